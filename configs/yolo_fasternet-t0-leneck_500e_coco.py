# FasterNet-T0 + LeNeck + YOLO head: FasterNet-T0's maps at strides 8/16/32 (stage1 80 ch, stage2 160 ch, stage3
# 320 ch), an SPPF block on the stride-32 map, LeNeck and the YOLO head; the recipe of
# yolo_mobilenetv3-large-leneck_500e_coco.py otherwise. ImageNet weights convert from timm
# (tools/convert_weights.py --arch fasternet_t0 ...) and load with model.backbone.pretrained=<file> (optional).
_base_ = ['./yolo_mobilenetv3-large-leneck_500e_coco.py']
model = dict(backbone=dict(_delete_=True, type='FasterNet', arch='fasternet_t0',
                           out_indices=('stage1', 'stage2', 'stage3')))
