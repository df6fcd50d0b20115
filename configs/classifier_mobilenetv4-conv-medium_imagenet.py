# MobileNetV4-Conv-M (Qin et al., ECCV 2024, ImageNet table: 9.2M parameters, 1.0G MACs, 79.9% top-1 at 256 px).
# Ours = timm's mobilenetv4_conv_medium exactly: 9,715,512 parameters, 0.828G MACs at 224 (1.080G at 256), which is
# what the paper's own architecture table (Tab. 12) counts to; its summary table's 9.2M/1.0G disagree with it
# (docs/backbones.md).
# Architecture config for tools/benchmark.py and timm weight conversion
# (tools/convert_weights.py --arch <timm name> SRC DST); measured figures: docs/backbones.md.
default_scope = 'mobilevision'
model = dict(type='ImageClassifier',
             backbone=dict(type='MobileNetV4', arch='mobilenetv4_conv_medium'),
             head=dict(type='PreLogitsClsHead', num_classes=1000, hidden_channels=1280, norm='bn', act_layer='relu'))
infer_pipeline = [dict(type='Albumentations', transforms=[dict(type='Resize', height=224, width=224)])]
benchmark_shape = (3, 224, 224)
