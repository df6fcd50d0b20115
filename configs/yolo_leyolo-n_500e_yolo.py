# LeYOLO-Nano on a dataset in YOLO-txt layout (images/<split>/*.jpg, labels/<split>/*.txt, a data yaml with
# "names"), evaluated with pycocotools on the val split's boxes (no json needed: the metric builds the ground truth
# from the samples). Set yolo_yaml (or --cfg-options) to your data yaml; the coco8 sample's yaml is the default.
_base_ = ['./yolo_leyolo-n_500e_coco.py']
yolo_yaml = '{{ fileDirname }}/../tests/assets/detection/coco8/coco8.yaml'
model = dict(num_classes=80, cat_ids=None)
train_dataloader = dict(
    dataset=dict(_delete_=True, type='YOLODetection', data_yaml=yolo_yaml, split='train', filter_empty_gt=False,
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='YOLODetection', data_yaml=yolo_yaml, split='val',
                 pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric')
test_evaluator = val_evaluator
