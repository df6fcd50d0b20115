# Mobile DeepLabv3 (MobileNetV2, OS16, ASPP-lite), stage 3 of 3 of the published VOC model: fine-tune the COCO
# model of deeplabv3_mobilenetv2_100k_coco-voc.py on VOC 2012 train_aug (10,582 images), evaluate on VOC 2012 val
# at the original resolution, single scale, OS16. Published: 75.32 mIoU (TF DeepLab model zoo,
# `mobilenetv2_coco_voc_trainaug`, the MobileNetV2 paper's Table 7 "MNet V2*, OS16, no ASPP" row).
# Recipe: the VOC config's (crop 513, batch 16, poly 0.9, 30k iterations, wd 4e-5, scale 0.5-2.0, flips) with
# the smaller initial learning rate DeepLabv3 uses after COCO pre-training (section 4.3: 0.0001).
# Starts from the COCO stage's last checkpoint (run from the repository root, where tools/train.py writes
# work_dirs/<config name>/), or pass --cfg-options load_from=PATH; a missing file stops training at the start.
_base_ = ['./deeplabv3_mobilenetv2_30k_voc-aug.py']
model = dict(backbone=dict(pretrained=None))  # every weight comes from load_from
load_from = 'work_dirs/deeplabv3_mobilenetv2_100k_coco-voc/iter_100000.pth'
optim_wrapper = dict(optimizer=dict(lr=0.0001))
