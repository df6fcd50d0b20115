# LeYOLO-Nano (Hollard et al., 2024) on COCO 2017, 80 classes, trained from scratch at 640x640.
# Backbone LeYOLONet('n') + LeNeck + YOLOHead (DNiN, reg_max 16); task-aligned assignment (TOOD: top-10, alpha 0.5,
# beta 6), BCE / CIoU / DFL with gains 0.5 / 7.5 / 1.5; sigmoid scores, multi-label NMS at IoU 0.7, 300 detections.
# Published: 25.2 mAP at 320, 31.3 at 480 (0.66 / 1.47 "GFLOPs" = 2 x MACs): the same weights tested with the
# LetterBox at that size (--cfg-options test_dataloader.dataset.pipeline.0.size=320).
#
# Recipe (YOLOv8's, as LeYOLO trains; stated exactly):
#   500 epochs at 640, total batch 128 (e.g. 8 GPUs x 16), SGD Nesterov, momentum 0.937, lr 0.01;
#   weight decay 5e-4 x 128 / 64 = 1e-3 on conv/linear weights only (no decay on norms and biases:
#   paramwise_cfg norm_decay_mult = bias_decay_mult = 0);
#   warm-up 3 epochs: lr linearly from ~0 (LinearLR), momentum 0.8 -> 0.937 (LinearMomentum), bias lr from 0.1
#   down to the schedule's lr (YOLOBiasWarmupHook); then linear decay to 0.01 x lr at the last epoch;
#   gradient-norm clip 10; weight EMA with decay 0.9999 x (1 - exp(-updates / 2000)) (mmengine EMAHook with our
#   YOLOExpEMA averaged model), the averaged weights used for validation and saved;
#   AMP on GPU: tools/train.py --amp. Mosaic is switched off for the last 10 epochs (CloseMosaicHook).
#   The loss is scaled by the images per batch (x world size), so lr 0.01 holds for any total batch of 64-128.
_base_ = ['./_base_/default_runtime.py', './_base_/det_coco.py']
input_size = 640
arch = 'n'
model = dict(
    type='YOLODetector', num_classes=80, classes={{_base_.coco_classes}}, cat_ids={{_base_.coco_cat_ids}},
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0.0] * 3, std=[255.0] * 3),  # pixels / 255
    backbone=dict(type='LeYOLONet', arch=arch),
    neck=dict(type='LeNeck', expand_ratio=2.25, num_blocks=3),
    head=dict(type='YOLOHead', reg_max=16),
    loss=dict(type='YOLOLoss', reg_max=16, cls_gain=0.5, box_gain=7.5, dfl_gain=1.5,
              assigner=dict(type='TaskAlignedAssigner', topk=10, alpha=0.5, beta=6.0)),
    post_processor=dict(type='YOLOPostProcessor', score_thr=0.001, iou_thr=0.7, max_per_img=300, multi_label=True),
)
# mosaic 2x2 (p 1, fill 114), random affine (scale 0.5-1.5, translate 0.1) with the box filter, HSV gains
# 0.015 / 0.7 / 0.4, horizontal flip 0.5, blur / median blur / gray / CLAHE at p 0.01
train_pipeline = [
    dict(type='Mosaic', img_scale=input_size, pad_val=114, p=1.0),
    dict(type='RandomAffine', scale=(0.5, 1.5), translate=0.1, output_size=input_size, pad_val=114),
    dict(type='HSVJitter', hgain=0.015, sgain=0.7, vgain=0.4),
    dict(type='Albumentations', transforms=[
        dict(type='HorizontalFlip', p=0.5), dict(type='Blur', p=0.01), dict(type='MedianBlur', p=0.01),
        dict(type='ToGray', p=0.01), dict(type='CLAHE', p=0.01)]),
]
test_pipeline = [dict(type='LetterBox', size=input_size, pad_val=114)]
infer_pipeline = test_pipeline
train_dataloader = dict(batch_size=16, num_workers=8, dataset=dict(filter_empty_gt=False, pipeline=train_pipeline))
val_dataloader = dict(batch_size=16, num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 500
warmup_epochs = 3
base_lr = 0.01
total_batch = 128
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.937, nesterov=True, weight_decay=5e-4 * total_batch / 64),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, end_factor=1.0, begin=0, end=warmup_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='LinearMomentum', start_factor=0.8 / 0.937, end_factor=1.0, begin=0, end=warmup_epochs,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.01, begin=0, end=max_epochs, by_epoch=True),
]
custom_hooks = [
    dict(type='YOLOBiasWarmupHook', warmup_epochs=warmup_epochs, warmup_bias_lr=0.1),
    dict(type='EMAHook', ema_type='YOLOExpEMA', decay=0.9999, tau=2000, update_buffers=True, priority=49),
    dict(type='CloseMosaicHook', num_last_epochs=10),
    dict(type='PlainLogHistoryHook'),
]
auto_scale_lr = dict(enable=False, base_batch_size=total_batch)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3, save_last=True,
                                     save_best='coco/bbox_mAP', rule='greater'))
benchmark_shape = (3, input_size, input_size)
