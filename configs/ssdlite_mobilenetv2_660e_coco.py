# SSDLite on MobileNetV2 at 320x320 (MobileNetV2 paper, section 6.2, Table 6: 4.3M parameters, 0.8B MACs, 22.1 COCO
# mAP), 80 COCO classes, trained from scratch.
#
# Model: the paper's model is the TF object detection API configuration (ssdlite_mobilenet_v2_coco): feature maps
# at strides 16 and 32 from the backbone plus four SSDLite extra layers (512, 256, 256, 128), separable
# prediction layers, and `reduce_boxes_in_lowest_layer`: 3 default boxes on the first map (scale 0.1 ratio 1, scale
# 0.2 ratios 2 and 1/2), 6 on the others (scales 0.2-0.95, ratios 1, 2, 1/2, 3, 1/3 + one interpolated scale).
# `python tools/benchmark.py configs/ssdlite_mobilenetv2_660e_coco.py --shape 3 320 320` gives 4.34M parameters and
# 0.79G MACs (docs/detection.md). The MobileNetV3 config keeps torchvision's 6 boxes on every map.
#
# Schedule: the recipe torchvision used for its SSDLite320 models (torchvision references/detection README:
# `--epochs 660 --batch-size 24` on 8 GPUs, `--lr 0.15 --weight-decay 0.00004 --lr-scheduler cosineannealinglr`):
# from-scratch detectors need a long schedule with BatchNorm everywhere (He et al., "Rethinking ImageNet
# Pre-training", 2019), and SSDLite's small capacity tolerates the heavy augmentation for that long. Exact numbers:
#   batch 192 (e.g. 8 GPUs x 24), SGD momentum 0.9, Nesterov off, base lr 0.15, weight decay 4e-5 (the MobileNet
#   value; no decay on norms/biases is NOT applied, as in the reference), 660 epochs x 611 iterations
#   (117,266 train2017 images with boxes / 192) = 403,260 iterations; linear warm-up over the first 1,000
#   iterations from 0.001 x lr; cosine annealing to 0 over the 660 epochs (per iteration).
#   auto_scale_lr keeps lr / batch constant when run with another total batch size.
# Augmentation: SSD's (photometric distortion, zoom out, the paper's minimum-IoU crop with the "some object" rule
# and the unconstrained patch, flip), data/transforms/detection.py.
_base_ = ['./_base_/default_runtime.py', './_base_/det_coco.py']
input_size = 320
norm = dict(type='bn', eps=0.001, momentum=0.03)
model = dict(
    type='Detector', num_classes=80, classes={{_base_.coco_classes}}, cat_ids={{_base_.coco_cat_ids}},
    # TF object detection API convention for MobileNet SSD: pixels scaled to [-1, 1]
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3),
    # feature points: 5 = layer14_expand (576 ch, stride 16), 8 = last_conv (1280 ch, stride 32)
    backbone=dict(type='MobileNetV2', out_indices=(5, 8), norm_layer=norm),
    neck=dict(type='SSDLiteNeck', extra_channels=(512, 256, 256, 128), norm_layer=norm),
    head=dict(type='SSDLiteHead', norm_layer=norm),
    anchor_generator=dict(type='DefaultBoxGenerator', num_levels=6, min_ratio=0.2, max_ratio=0.95,
                          aspect_ratios=(2.0, 3.0), reduce_boxes_in_lowest_layer=True, lowest_scale=0.1),
    matcher=dict(type='SSDMatcher', pos_iou_thr=0.5),
    box_coder=dict(type='DeltaXYWHCoder', variances=(0.1, 0.1, 0.2, 0.2)),
    loss=dict(type='SSDLoss', neg_pos_ratio=3.0),
    post_processor=dict(type='SSDPostProcessor', score_thr=0.001, topk=300, nms_iou_thr=0.55, max_per_img=300),
)
train_pipeline = [
    dict(type='SSDPhotometricDistortion'),
    dict(type='SSDExpand', mean=(127.5, 127.5, 127.5), ratio_range=(1.0, 4.0), p=0.5),
    dict(type='SSDMinIoURandomCrop', min_ious=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3, iou_rule='any',
         keep_original=True),
    dict(type='Albumentations', transforms=[dict(type='HorizontalFlip', p=0.5),
                                            dict(type='Resize', height=input_size, width=input_size)]),
]
test_pipeline = [dict(type='Albumentations', transforms=[dict(type='Resize', height=input_size, width=input_size)])]
infer_pipeline = test_pipeline
train_dataloader = dict(batch_size=24, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, num_workers=2, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 660
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.15, momentum=0.9, weight_decay=4e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.0, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=False, base_batch_size=192)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3, save_last=True))
benchmark_shape = (3, input_size, input_size)
