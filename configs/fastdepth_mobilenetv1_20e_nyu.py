# FastDepth as published: MobileNetV1 encoder with ReLU6 (the official code's imagenet/mobilenet.py) + NNConv5
# decoder (ReLU), additive skips from the stride 8/4/2 features, last layer 1x1 conv + BN + ReLU, input rgb / 255,
# nearest-neighbour resampling in the NYU transforms (all in ./_base_/fastdepth_nyu.py).
# Unpruned: 3.96 M parameters, 0.74 GMACs at 224x224; tools/prune.py --target-macs 0.37G makes the paper's pruned
# size (1.34 M / 0.37 GMACs in the paper). The official checkpoint converts with tools/convert_weights.py
# --arch fastdepth (docs/depth.md). For an ImageNet-pretrained encoder set model.backbone.pretrained.
_base_ = ['./_base_/fastdepth_nyu.py']
model = dict(backbone=dict(type='MobileNetV1', width_mult=1.0, act_layer='ReLU6',
                           out_indices=(0, 1, 2, 4)))  # 64/2 128/4 256/8 1024/32
