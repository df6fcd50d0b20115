# SSDLite at 320x320 on FasterNet-T0 (Chen et al., CVPR 2023): the maps at strides 16 (stage2, 160 channels) and
# 32 (stage3, 320 channels) feed the SSDLite extra layers and separable heads of ssdlite_mobilenetv2_660e_coco.py
# (same data, schedule, default boxes). No published detection number for this pairing; ImageNet weights convert
# from timm: python3 tools/convert_weights.py --arch fasternet_t0 SRC checkpoints/fasternet_t0_imagenet.pth, then
# --cfg-options model.backbone.pretrained=checkpoints/fasternet_t0_imagenet.pth.
_base_ = ['./ssdlite_mobilenetv2_660e_coco.py']
model = dict(backbone=dict(_delete_=True, type='FasterNet', arch='fasternet_t0', out_indices=('stage2', 'stage3')))
