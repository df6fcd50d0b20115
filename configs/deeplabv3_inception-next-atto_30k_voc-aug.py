# Mobile DeepLabv3 on InceptionNeXt-atto (Yu et al., CVPR 2024): the backbone at output stride 16 (the last stage
# dilated, not strided), ASPP-lite (1x1 conv + image pooling, 256 channels) on its 320-channel map, 1x1 classifier;
# data, crop and schedule of deeplabv3_mobilenetv2_30k_voc-aug.py (DeepLabv3 section 4.1). No published number for
# this pairing. ImageNet backbone (required, as for MobileNetV2): convert timm's inception_next_atto weights with
#   python3 tools/convert_weights.py --arch inception_next_atto SRC checkpoints/inception_next_atto_imagenet.pth
# (from scratch on purpose: --cfg-options model.backbone.pretrained=None). `output_stride = 8` works too.
_base_ = ['./deeplabv3_mobilenetv2_30k_voc-aug.py']
output_stride = 16
imagenet_backbone = '{{ fileDirname }}/../checkpoints/inception_next_atto_imagenet.pth'
model = dict(backbone=dict(_delete_=True, type='InceptionNeXt', arch='inception_next_atto',
                           output_stride=output_stride, out_indices=('stage3',), pretrained=imagenet_backbone))
