# MobileNetV2 1.0 ImageNet classifier (Sandler et al., 2018, Table 2 / section 6.1): 3,504,872 parameters,
# ~300M multiply-adds at 224x224. Architecture config for tools/benchmark.py and torchvision weight conversion.
default_scope = 'mobilevision'
model = dict(type='ImageClassifier',
             backbone=dict(type='MobileNetV2', width_mult=1.0),
             head=dict(type='LinearClsHead', num_classes=1000, dropout=0.2))
infer_pipeline = [dict(type='Albumentations', transforms=[dict(type='Resize', height=224, width=224)])]
benchmark_shape = (3, 224, 224)
