# FastDepth: MobileNetV1 encoder (the paper) + NNConv5 decoder, additive skips from the stride 8/4/2 features.
# Unpruned: 3.96 M parameters, 0.74 GMACs at 224x224 (the paper's pruned network: 1.34 M, 0.37 GMACs).
# For an ImageNet-pretrained encoder set model.backbone.pretrained to a MobileNetV1 checkpoint.
_base_ = ['./_base_/fastdepth_nyu.py']
model = dict(backbone=dict(type='MobileNetV1', width_mult=1.0, out_indices=(0, 1, 2, 4)))  # 64/2 128/4 256/8 1024/32
