# "Does it learn" check of LeYOLO-Nano on the bundled coco8 sample (tests/assets/detection/coco8): train on its 4
# train images, then test on the same 4 images (pycocotools mAP; the target is mAP50 >= 0.5).
#   python3 tools/train.py configs/yolo_leyolo-n_coco8.py --threads 2 --work-dir /tmp/yolo_coco8
#   python3 tools/test.py configs/yolo_leyolo-n_coco8.py /tmp/yolo_coco8/epoch_300.pth
# Letterbox 320, no augmentation, AdamW lr 1e-3 (weight decay 5e-4 on weights only), batch 4 (one iteration per
# epoch), 300 epochs, 20-epoch linear warm-up, no EMA. Everything else is the COCO config's model.
_base_ = ['./yolo_leyolo-n_500e_coco.py']
coco8_root = '{{ fileDirname }}/../tests/assets/detection/coco8'
input_size = 320
train_pipeline = [dict(type='LetterBox', size=input_size, pad_val=114)]
test_pipeline = [dict(type='LetterBox', size=input_size, pad_val=114)]
infer_pipeline = test_pipeline
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CocoDetection', ann_file=f'{coco8_root}/instances_train.json',
                 img_dir=f'{coco8_root}/images/train', filter_empty_gt=False, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CocoDetection', ann_file=f'{coco8_root}/instances_train.json',
                 img_dir=f'{coco8_root}/images/train', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=f'{coco8_root}/instances_train.json')
test_evaluator = val_evaluator

max_epochs = 300
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=5e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, end_factor=1.0, begin=0, end=20, by_epoch=True)]
custom_hooks = [dict(type='PlainLogHistoryHook')]
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1, save_last=True,
                                     save_best=None))
log_processor = dict(window_size=1)
benchmark_shape = (3, input_size, input_size)
