# torchvision's lraspp_mobilenet_v3_large, same architecture (converted weights give the same logits):
# MobileNetV3-Large dilated to output stride 16; LR-ASPP (MobileNetV3 paper, section 6.4) on features[16]
# (960 ch, stride 16) and features[4] (40 ch, stride 8), 128 inner channels, global pooling gate.
#   python tools/convert_weights.py --arch lraspp_mobilenet_v3_large lraspp_mobilenet_v3_large-d234d4ea.pth out.pth
# Recipe of torchvision's reference (references/segmentation README: `torchrun --nproc_per_node=8 train.py
# --dataset coco -b 4 --model lraspp_mobilenet_v3_large --wd 0.000001 --weights-backbone
# MobileNet_V3_Large_Weights.IMAGENET1K_V1`, train.py defaults lr 0.01, 30 epochs, momentum 0.9): COCO reduced to
# the VOC classes, short side 520, random scale 0.5-2.0, flip, crop 480; ImageNet backbone; 30 epochs, batch 32
# (4 x 8 GPUs), SGD momentum 0.9, lr 0.01 poly (power 0.9, per iteration), weight decay 1e-6, no auxiliary loss.
# Published (torchvision model card, COCO val2017 VOC-class subset): 57.9 mIoU, 91.2 pixel accuracy.
# ImageNet backbone (required for training; the run stops at the start naming the file when it is missing):
#   python tools/convert_weights.py --arch mobilenet_v3_large mobilenet_v3_large-8738ca79.pth \
#       checkpoints/mobilenet_v3_large_imagenet.pth
# (IMAGENET1K_V1 weights; from scratch on purpose: --cfg-options model.backbone.pretrained=None.)
_base_ = ['./_base_/default_runtime.py', './_base_/seg_coco_voc.py']
imagenet_backbone = '{{ fileDirname }}/../checkpoints/mobilenet_v3_large_imagenet.pth'
model = dict(
    type='Segmentor', num_classes=21,
    # torchvision taps features[4] (the first stride-8 block) and features[16] (the last conv)
    backbone=dict(type='MobileNetV3', arch='large', output_stride=16, out_indices=('layer4', 'layer16'),
                  pretrained=imagenet_backbone),
    head=dict(type='LRASPPHead', channels=128))
max_epochs = 30
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-6))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_epochs, by_epoch=True,
                        convert_to_iter_based=True)]
benchmark_shape = (3, 520, 520)
auto_scale_lr = dict(enable=False, base_batch_size=32)
