# MobileNetV4-Conv-S (Qin et al., ECCV 2024, ImageNet table: 3.8M parameters, 0.2G MACs, 73.8% top-1).
# Architecture config for tools/benchmark.py and timm weight conversion
# (tools/convert_weights.py --arch <timm name> SRC DST); measured figures: docs/backbones.md.
default_scope = 'mobilevision'
model = dict(type='ImageClassifier',
             backbone=dict(type='MobileNetV4', arch='mobilenetv4_conv_small'),
             head=dict(type='PreLogitsClsHead', num_classes=1000, hidden_channels=1280, norm='bn', act_layer='relu'))
infer_pipeline = [dict(type='Albumentations', transforms=[dict(type='Resize', height=224, width=224)])]
benchmark_shape = (3, 224, 224)
