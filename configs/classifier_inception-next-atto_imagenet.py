# InceptionNeXt-atto (Yu et al., CVPR 2024, ImageNet table: 4.2M parameters, 75.3% top-1; timm's card: 0.5G MACs).
# Architecture config for tools/benchmark.py and timm weight conversion
# (tools/convert_weights.py --arch <timm name> SRC DST); measured figures: docs/backbones.md.
default_scope = 'mobilevision'
model = dict(type='ImageClassifier',
             backbone=dict(type='InceptionNeXt', arch='inception_next_atto'),
             head=dict(type='PreLogitsClsHead', num_classes=1000, hidden_channels=960, hidden_layer='linear',
                       hidden_bias=True, norm='ln', norm_first=False, act_layer='gelu'))
infer_pipeline = [dict(type='Albumentations', transforms=[dict(type='Resize', height=224, width=224)])]
benchmark_shape = (3, 224, 224)
