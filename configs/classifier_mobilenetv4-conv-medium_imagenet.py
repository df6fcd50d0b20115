# MobileNetV4-Conv-M (Qin et al., ECCV 2024, ImageNet table: 9.2M parameters, 1.0G MACs, 79.9% top-1 at 256 px).
# Ours = timm's mobilenetv4_conv_medium exactly: 9.72M parameters, 0.828G MACs at 224 (docs/backbones.md: this
# row does not meet the paper's size).
# Architecture config for tools/benchmark.py and timm weight conversion
# (tools/convert_weights.py --arch <timm name> SRC DST); measured figures: docs/backbones.md.
default_scope = 'mobilevision'
model = dict(type='ImageClassifier',
             backbone=dict(type='MobileNetV4', arch='mobilenetv4_conv_medium'),
             head=dict(type='PreLogitsClsHead', num_classes=1000, hidden_channels=1280, norm='bn', act_layer='relu'))
infer_pipeline = [dict(type='Albumentations', transforms=[dict(type='Resize', height=224, width=224)])]
benchmark_shape = (3, 224, 224)
