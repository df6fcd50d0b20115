# FasterNet-T1 (Chen et al., CVPR 2023, ImageNet table: 7.6M parameters, 0.85G FLOPs (multiply-adds), 76.2% top-1).
# Architecture config for tools/benchmark.py and timm weight conversion
# (tools/convert_weights.py --arch <timm name> SRC DST); measured figures: docs/backbones.md.
default_scope = 'mobilevision'
model = dict(type='ImageClassifier',
             backbone=dict(type='FasterNet', arch='fasternet_t1'),
             head=dict(type='PreLogitsClsHead', num_classes=1000, hidden_channels=1280, act_layer='gelu'))
infer_pipeline = [dict(type='Albumentations', transforms=[dict(type='Resize', height=224, width=224)])]
benchmark_shape = (3, 224, 224)
