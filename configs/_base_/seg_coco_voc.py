# COCO train2017/val2017 reduced to the 20 VOC categories (+ background), as torchvision's segmentation
# reference trains its DeepLabV3/LR-ASPP MobileNetV3 models: resize the short side to 520, random scale
# 0.5-2.0, flip, crop 480; evaluate at short side 520 (predictions mapped back to the original size).
datasets_root = '{{$MOBILEVISION_DATA:{{ fileDirname }}/../../datasets}}'  # or $MOBILEVISION_DATA
coco_root = datasets_root + '/coco'
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='CocoVOCSegmentation', ann_file=f'{coco_root}/annotations/instances_train2017.json',
                 img_dir=f'{coco_root}/train2017',
                 pipeline=[dict(type='SegTestResize', short_side=520, resize_mask=True),
                           dict(type='SegTrainAugment', crop_size=480, scale_range=(0.5, 2.0), flip_prob=0.5,
                                photometric=0.0)]))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='CocoVOCSegmentation', ann_file=f'{coco_root}/annotations/instances_val2017.json',
                 img_dir=f'{coco_root}/val2017', test_mode=True,
                 pipeline=[dict(type='SegTestResize', short_side=520)]))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', num_classes=21)
test_evaluator = val_evaluator
infer_pipeline = [dict(type='SegTestResize', short_side=520)]
