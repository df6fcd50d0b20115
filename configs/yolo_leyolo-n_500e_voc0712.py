# LeYOLO-Nano on PASCAL VOC07+12 trainval (16,551 images), tested on VOC2007 test with the VOC2007 11-point AP
# at IoU 0.5. The COCO recipe (500 epochs at 640, batch 128, SGD 0.01, ...) with 20 classes; difficult objects are
# neither positives nor negatives in training and ignored by the metric.
_base_ = ['./yolo_leyolo-n_500e_coco.py', './_base_/voc_categories.py']
datasets_root = '{{$MOBILEVISION_DATA:{{ fileDirname }}/../datasets}}'  # or $MOBILEVISION_DATA
voc_root = datasets_root + '/VOCdevkit'
model = dict(num_classes=20, classes={{_base_.voc_classes}}, cat_ids=None)
train_dataloader = dict(
    dataset=dict(_delete_=True, type='VOCDetection', data_root=voc_root, years=[2007, 2012], split='trainval',
                 filter_empty_gt=False, pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='VOCDetection', data_root=voc_root, year=2007, split='test',
                 pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='VOCMetric', iou_thr=0.5, eval_mode='11points')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='voc/mAP'))
