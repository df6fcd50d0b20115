# COCO 2017 detection data: train2017 for training, val2017 for validation and testing, pycocotools mAP, the 80
# classes with their category ids. Paths: datasets/coco/{train2017,val2017,annotations} beside the repository (or
# $MOBILEVISION_DATA/coco; not shipped, see docs/detection.md). A detector config sets train_pipeline /
# test_pipeline and its batch sizes:
#   train_dataloader = dict(batch_size=..., num_workers=..., dataset=dict(pipeline=train_pipeline))
#   val_dataloader = dict(batch_size=..., dataset=dict(pipeline=test_pipeline)); test_dataloader = val_dataloader
_base_ = ['./coco_categories.py']
datasets_root = '{{$MOBILEVISION_DATA:{{ fileDirname }}/../../datasets}}'  # or $MOBILEVISION_DATA
coco_root = datasets_root + '/coco'
train_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='CocoDetection', ann_file=f'{coco_root}/annotations/instances_train2017.json',
                 img_dir=f'{coco_root}/train2017', filter_empty_gt=True, pipeline=[]))
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='CocoDetection', ann_file=f'{coco_root}/annotations/instances_val2017.json',
                 img_dir=f'{coco_root}/val2017', pipeline=[]))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=f'{coco_root}/annotations/instances_val2017.json')
test_evaluator = val_evaluator
