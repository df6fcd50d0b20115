# MobileNetV4-Conv-S + LeNeck + YOLO head: the backbone's maps at strides 8/16/32 (stage1 64 ch, stage2 96 ch,
# stage3 128 ch; the 960-channel last conv is left out), an SPPF block on the stride-32 map, LeNeck and the YOLO
# head; the recipe of yolo_mobilenetv3-large-leneck_500e_coco.py otherwise. ImageNet weights convert from timm
# (tools/convert_weights.py --arch mobilenetv4_conv_small ...) and load with model.backbone.pretrained=<file>.
_base_ = ['./yolo_mobilenetv3-large-leneck_500e_coco.py']
model = dict(backbone=dict(_delete_=True, type='MobileNetV4', arch='mobilenetv4_conv_small',
                           out_indices=('stage1', 'stage2', 'stage3')))
