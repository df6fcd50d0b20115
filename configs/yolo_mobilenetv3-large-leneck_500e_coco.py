# "MobileNetV3-Large + LeNeck" (LeYOLO paper, section 4: LeNeck as a general-purpose detection neck): torchvision's
# MobileNetV3-Large features at strides 8/16/32 (stage2 40 ch, stage4 112 ch, stage5 160 ch), an SPPF block on the
# stride-32 map (sppf=True), LeNeck and the YOLO head; the LeYOLO recipe otherwise. ImageNet weights for the
# backbone load with model.backbone.pretrained=<torchvision or our MobileNetV3-Large checkpoint> (optional).
_base_ = ['./yolo_leyolo-n_500e_coco.py']
model = dict(
    backbone=dict(_delete_=True, type='MobileNetV3', arch='large', out_indices=('stage2', 'stage4', 'stage5'),
                  norm_layer=dict(type='bn', eps=1e-3, momentum=0.03)),
    neck=dict(type='LeNeck', sppf=True, expand_ratio=2.25, num_blocks=3))
