# SSDLite at 320x320 on MobileNetV4-Conv-S (Qin et al., ECCV 2024): the maps at strides 16 (stage2, 96 channels)
# and 32 (last_conv, 960 channels) feed the SSDLite extra layers and separable heads of
# ssdlite_mobilenetv2_660e_coco.py (same data, schedule, default boxes). ImageNet weights convert from timm:
# python3 tools/convert_weights.py --arch mobilenetv4_conv_small SRC checkpoints/mobilenetv4_conv_small_imagenet.pth,
# then --cfg-options model.backbone.pretrained=checkpoints/mobilenetv4_conv_small_imagenet.pth.
_base_ = ['./ssdlite_mobilenetv2_660e_coco.py']
model = dict(backbone=dict(_delete_=True, type='MobileNetV4', arch='mobilenetv4_conv_small',
                           out_indices=('stage2', 'last_conv')))
