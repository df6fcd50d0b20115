# Mobile DeepLabv3 (MobileNetV2 paper, section 6.3, Table 7 row "MNet V2*, OS 16, no ASPP"): MobileNetV2 at
# output stride 16, head on the 320-channel map (stage6), ASPP-lite = 1x1 conv + image pooling (256 ch, BN,
# ReLU), concatenated, projected, 1x1 classifier, bilinear up-sampling. 2.11M parameters; 2.74B MACs at 513x513
# (2.60B at 512x512), paper: 2.11M / 2.75B.
#
# Stage "ImageNet -> VOC train_aug" of the published model. The published 75.32 mIoU (TF DeepLab model zoo,
# `mobilenetv2_coco_voc_trainaug`, VOC 2012 val, OS16, single scale) is ImageNet -> COCO -> VOC train_aug: for it
# run deeplabv3_mobilenetv2_100k_coco-voc.py, then deeplabv3_mobilenetv2_30k_voc-aug-from-coco.py. This config
# alone (no COCO stage) has no published number; expect it several points below 75.32 (docs/segmentation.md).
#
# ImageNet backbone (required): make the file once from torchvision's ImageNet MobileNetV2 weights
# (IMAGENET1K_V1, mobilenet_v2-b0353104.pth) with
#   python tools/convert_weights.py --arch mobilenet_v2 mobilenet_v2-b0353104.pth checkpoints/mobilenet_v2_imagenet.pth
# Training stops at the start with "checkpoint .../checkpoints/mobilenet_v2_imagenet.pth does not exist" when it is
# missing: the recipe's number needs it, and a silent from-scratch run would cost the whole schedule for a much
# lower mIoU. To train from scratch on purpose: --cfg-options model.backbone.pretrained=None.
# (Only training reads it: tools/test.py, infer.py, export.py and benchmark.py load full checkpoints or none.)
_base_ = ['./_base_/default_runtime.py', './_base_/seg_voc_aug.py']
output_stride = 16
imagenet_backbone = '{{ fileDirname }}/../checkpoints/mobilenet_v2_imagenet.pth'
model = dict(
    type='Segmentor', num_classes=21,
    backbone=dict(type='MobileNetV2', out_indices=(7,), output_stride=output_stride, pretrained=imagenet_backbone),
    # full ASPP option: dilations=(6, 12, 18) at OS16, (12, 24, 36) at OS8 (DeepLabv3, section 4.1)
    neck=dict(type='ASPP', channels=256, dilations=(), image_pooling=True),
    head=dict(type='DeepLabHead', dropout=0.1),
    loss=dict(ignore_index=255),
    test_cfg=dict(scales=(1.0,), flip=False))
# DeepLabv3 recipe (section 4.1): crop 513, batch 16, SGD momentum 0.9, lr 0.007 with the poly schedule
# (power 0.9) over 30k iterations, weight decay 4e-5 (the TF DeepLab MobileNetV2 setting), random scale
# 0.5-2.0 and flips; BN is trained (batch 16 per step).
max_iters = 30000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=3000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.007, momentum=0.9, weight_decay=4e-5))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
default_hooks = dict(logger=dict(type='LoggerHook', interval=50),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3000, max_keep_ckpts=2,
                                     save_last=True))
log_processor = dict(by_epoch=False)
benchmark_shape = (3, 512, 512)
