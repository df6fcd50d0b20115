# Mobile DeepLabv3 (ASPP-lite, OS16, MobileNetV2) on Cityscapes fine, 19 classes.
# Recipe (DeepLabv3 on Cityscapes, section 4.2 style): crop 769x769, batch 8, SGD momentum 0.9, lr 0.01 poly
# (power 0.9) over 90k iterations, weight decay 4e-5, random scale 0.5-2.0, flips, photometric jitter.
_base_ = ['./_base_/default_runtime.py', './_base_/seg_cityscapes.py']
model = dict(
    type='Segmentor', num_classes=19,
    backbone=dict(type='MobileNetV2', out_indices=(7,), output_stride=16, pretrained=None),
    neck=dict(type='ASPP', channels=256, dilations=(), image_pooling=True),
    head=dict(type='DeepLabHead', dropout=0.1))
max_iters = 90000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=4e-5))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=2,
                                     save_last=True))
log_processor = dict(by_epoch=False)
benchmark_shape = (3, 1024, 2048)
