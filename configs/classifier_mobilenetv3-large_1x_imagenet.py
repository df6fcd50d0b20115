# MobileNetV3-Large 1.0 ImageNet classifier (Howard et al., 2019, Table 3): 5.4M parameters, 217M multiply-adds.
default_scope = 'mobilevision'
model = dict(type='ImageClassifier',
             backbone=dict(type='MobileNetV3', arch='large'),
             head=dict(type='LinearClsHead', num_classes=1000, hidden_channels=1280, act_layer='hardswish',
                       dropout=0.2))
infer_pipeline = [dict(type='Albumentations', transforms=[dict(type='Resize', height=224, width=224)])]
benchmark_shape = (3, 224, 224)
