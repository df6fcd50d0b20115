# Mobile DeepLabv3 (MobileNetV2, OS16, ASPP-lite), stage 2 of 3 of the published VOC model: ImageNet -> COCO (20 VOC
# classes + background) -> VOC train_aug. The TF DeepLab model zoo's `mobilenetv2_coco_voc_trainaug` (75.32 mIoU on
# VOC 2012 val) was "pretrained on COCO" this way; its COCO schedule is not published, so this one follows the
# DeepLabv3 protocol (section 4.1 training; section 4.3 "Pretrained on COCO": COCO images whose VOC-class
# annotations cover more than 1000 pixels, other classes as background):
#   crop 513, batch 16, SGD momentum 0.9, lr 0.007 poly (power 0.9) over 100k iterations (~17 epochs of the ~92k
#   kept train2017 images), weight decay 4e-5, random scale 0.5-2.0, flips, BN trained.
# Needs the ImageNet backbone of the VOC config (checkpoints/mobilenet_v2_imagenet.pth, see
# deeplabv3_mobilenetv2_30k_voc-aug.py) and COCO 2017 under datasets/coco. Then fine-tune on VOC with
# deeplabv3_mobilenetv2_30k_voc-aug-from-coco.py, which loads this run's last checkpoint.
_base_ = ['./deeplabv3_mobilenetv2_30k_voc-aug.py']
datasets_root = '{{$MOBILEVISION_DATA:{{ fileDirname }}/../datasets}}'  # or $MOBILEVISION_DATA
coco_root = datasets_root + '/coco'
crop_size = 513
train_dataloader = dict(
    batch_size=16,
    dataset=dict(_delete_=True, type='CocoVOCSegmentation',
                 ann_file=f'{coco_root}/annotations/instances_train2017.json', img_dir=f'{coco_root}/train2017',
                 pipeline=[dict(type='SegTrainAugment', crop_size=crop_size, scale_range=(0.5, 2.0), flip_prob=0.5,
                                photometric=0.0)]))
# validation on COCO val2017 reduced to the VOC classes, at the original resolution
val_dataloader = dict(
    dataset=dict(_delete_=True, type='CocoVOCSegmentation',
                 ann_file=f'{coco_root}/annotations/instances_val2017.json', img_dir=f'{coco_root}/val2017',
                 test_mode=True, pipeline=[]))
test_dataloader = val_dataloader
max_iters = 100000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=2,
                                     save_last=True))
