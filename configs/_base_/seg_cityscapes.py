# Cityscapes fine: train on train (2,975 images), evaluate on val (500) at the full 1024x2048 resolution;
# 19 training classes, all other label ids ignored (255).
datasets_root = '{{$MOBILEVISION_DATA:{{ fileDirname }}/../../datasets}}'  # or $MOBILEVISION_DATA
city_root = datasets_root + '/cityscapes'
crop_size = 769
train_dataloader = dict(
    batch_size=8, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='CityscapesSegmentation', data_root=city_root, split='train',
                 pipeline=[dict(type='SegTrainAugment', crop_size=crop_size, scale_range=(0.5, 2.0),
                                flip_prob=0.5, photometric=0.5)]))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='CityscapesSegmentation', data_root=city_root, split='val', test_mode=True, pipeline=[]))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', num_classes=19)
test_evaluator = val_evaluator
infer_pipeline = []
