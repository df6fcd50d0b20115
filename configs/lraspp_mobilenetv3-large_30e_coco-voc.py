# torchvision's lraspp_mobilenet_v3_large, same architecture (converted weights give the same logits):
# MobileNetV3-Large dilated to output stride 16; LR-ASPP (MobileNetV3 paper, section 6.4) on features[16]
# (960 ch, stride 16) and features[4] (40 ch, stride 8), 128 inner channels, global pooling gate.
#   python tools/convert_weights.py --arch lraspp_mobilenet_v3_large lraspp_mobilenet_v3_large-d234d4ea.pth out.pth
# Recipe of torchvision's reference: COCO (VOC classes), 30 epochs, batch 32, SGD momentum 0.9, lr 0.02 poly
# (power 0.9, per iteration), weight decay 1e-6, no auxiliary loss. Published: 57.9 mIoU.
_base_ = ['./_base_/default_runtime.py', './_base_/seg_coco_voc.py']
model = dict(
    type='Segmentor', num_classes=21,
    # torchvision taps features[4] (the first stride-8 block) and features[16] (the last conv)
    backbone=dict(type='MobileNetV3', arch='large', output_stride=16, out_indices=('layer4', 'layer16'),
                  pretrained=None),
    head=dict(type='LRASPPHead', channels=128))
max_epochs = 30
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-6))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_epochs, by_epoch=True,
                        convert_to_iter_based=True)]
benchmark_shape = (3, 520, 520)
