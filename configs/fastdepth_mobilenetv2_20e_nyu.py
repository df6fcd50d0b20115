# FastDepth decoder on a MobileNetV2 encoder (an option; the paper uses MobileNetV1). Skips come from stage0
# (16/2), stage1 (24/4) and stage2 (32/8), projected by 1x1 conv-BN-ReLU to the decoder widths; the decoder
# starts from the 1280-channel last convolution (stride 32). ImageNet weights: model.backbone.pretrained =
# a torchvision mobilenet_v2 state dict (converted on load).
_base_ = ['./_base_/fastdepth_nyu.py']
model = dict(backbone=dict(type='MobileNetV2', width_mult=1.0, out_indices=(0, 1, 2, 8)))
