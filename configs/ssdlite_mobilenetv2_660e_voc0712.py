# SSDLite-MobileNetV2 320 on PASCAL VOC07+12 trainval (16,551 images), tested on VOC2007 test with the
# VOC2007 11-point AP at IoU 0.5 (the number SSD papers report), from scratch.
# Schedule: the COCO recipe's lr per image (0.15 / 192) at batch 64 -> lr 0.05, 660 epochs (the COCO config's)
# x 259 iterations = 170,940 iterations (from-scratch VOC detectors, e.g. DSOD, need >= 100k iterations),
# 1,000-iteration warm-up, cosine to 0. Same model (TF default boxes, 3 on the first map), 20 classes.
_base_ = ['./ssdlite_mobilenetv2_660e_coco.py', './_base_/voc_categories.py']
datasets_root = '{{$MOBILEVISION_DATA:{{ fileDirname }}/../datasets}}'  # or $MOBILEVISION_DATA
voc_root = datasets_root + '/VOCdevkit'
model = dict(num_classes=20, classes={{_base_.voc_classes}}, cat_ids=None)
train_dataloader = dict(
    batch_size=64,
    dataset=dict(_delete_=True, type='VOCDetection', data_root=voc_root, years=[2007, 2012], split='trainval',
                 filter_empty_gt=True, pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='VOCDetection', data_root=voc_root, year=2007, split='test',
                 pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='VOCMetric', iou_thr=0.5, eval_mode='11points')
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(lr=0.05))
auto_scale_lr = dict(enable=False, base_batch_size=64)
