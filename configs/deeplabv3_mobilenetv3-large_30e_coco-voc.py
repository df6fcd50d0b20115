# torchvision's deeplabv3_mobilenet_v3_large, same architecture (converted weights give the same logits):
# MobileNetV3-Large dilated to output stride 16, ASPP with rates 12/24/36 on the 960-channel last conv, dropout
# 0.5, 3x3 conv 256 + BN + ReLU, classifier; FCN auxiliary head on features[4] (the first stride-8 block).
#   python tools/convert_weights.py --arch deeplabv3_mobilenet_v3_large deeplabv3_mobilenet_v3_large-fc3c493d.pth out.pth
# Recipe of torchvision's reference: COCO (VOC classes), 30 epochs, batch 32 (4 x 8 GPUs), SGD momentum 0.9,
# lr 0.02 poly (power 0.9, per iteration), weight decay 1e-6, auxiliary loss weight 0.5. Published: 60.3 mIoU.
_base_ = ['./_base_/default_runtime.py', './_base_/seg_coco_voc.py']
model = dict(
    type='Segmentor', num_classes=21,
    # torchvision taps features[4] (the first stride-8 block) and features[16] (the last conv)
    backbone=dict(type='MobileNetV3', arch='large', output_stride=16, out_indices=('layer4', 'layer16'),
                  pretrained=None),
    neck=dict(type='ASPP', channels=256, dilations=(12, 24, 36), image_pooling=True, dropout=0.5),
    head=dict(type='DeepLabHead', channels=256, dropout=0.0),
    aux_head=dict(type='FCNHead', in_index=0, dropout=0.1),
    aux_weight=0.5)
max_epochs = 30
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-6))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_epochs, by_epoch=True,
                        convert_to_iter_based=True)]
benchmark_shape = (3, 520, 520)
