# FasterNet-T2 (Chen et al., CVPR 2023, ImageNet table: 15.0M parameters, 1.91G FLOPs (multiply-adds), 78.9% top-1).
# Architecture config for tools/benchmark.py and timm weight conversion
# (tools/convert_weights.py --arch <timm name> SRC DST); measured figures: docs/backbones.md.
default_scope = 'mobilevision'
model = dict(type='ImageClassifier',
             backbone=dict(type='FasterNet', arch='fasternet_t2'),
             head=dict(type='PreLogitsClsHead', num_classes=1000, hidden_channels=1280, act_layer='relu'))
infer_pipeline = [dict(type='Albumentations', transforms=[dict(type='Resize', height=224, width=224)])]
benchmark_shape = (3, 224, 224)
