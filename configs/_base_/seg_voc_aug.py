# PASCAL VOC 2012 segmentation: train on train_aug (VOC train + SBD train/val - VOC val = 10,582 images), evaluate
# mIoU on VOC val (1,449 images) at the original resolution. Paths: VOCdevkit/VOC2012 and SBD's
# benchmark_RELEASE/dataset beside the repository (not shipped; see docs/segmentation.md).
datasets_root = '{{$MOBILEVISION_DATA:{{ fileDirname }}/../../datasets}}'  # or $MOBILEVISION_DATA
voc_root = datasets_root + '/VOCdevkit/VOC2012'
sbd_root = datasets_root + '/benchmark_RELEASE/dataset'
crop_size = 513
train_pipeline = [dict(type='SegTrainAugment', crop_size=crop_size, scale_range=(0.5, 2.0), flip_prob=0.5,
                       photometric=0.0)]
train_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='VOCSegmentation', data_root=voc_root, sbd_root=sbd_root, split='train_aug',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='VOCSegmentation', data_root=voc_root, split='val', test_mode=True, pipeline=[]))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', num_classes=21)
test_evaluator = val_evaluator
infer_pipeline = []   # whole image; the preprocessor pads nothing at batch size 1
