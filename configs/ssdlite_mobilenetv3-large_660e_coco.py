# SSDLite320 on MobileNetV3-Large, architecture equal to torchvision's `ssdlite320_mobilenet_v3_large`
# (MobileNetV3 paper, section 6.3): reduced tail (last stage halved, 480-channel last conv; torchvision uses it
# whenever no ImageNet backbone is loaded, which is how its COCO checkpoint was built), BatchNorm eps 0.001 /
# momentum 0.03, SSDLite extra layers and separable heads, 6 default boxes per location on every map (torchvision
# does not reduce the first map's boxes, unlike the TF MobileNetV2 model), scales 0.2-0.95.
#
# Weights: `tools/convert_weights.py --arch ssdlite320_mobilenet_v3_large TV.pth OURS.pth` maps a torchvision
# checkpoint; the head keeps torchvision's 91 columns (background + 90 COCO category-id slots, 10 of them unused)
# so scores equal torchvision's softmax; `label_map` turns head class c (category id c + 1) into the contiguous
# label of the 80 COCO classes and drops the 10 unused slots.
#
# Preprocessing equals torchvision's GeneralizedRCNNTransform: pixels / 255, (x - 0.5) / 0.5, then a bilinear
# resize (align_corners=False, no antialiasing) of the normalised float image to 320x320, done in torch by the
# data preprocessor (`resize`): cv2's float resize (albumentations `Resize`) differs by up to ~2e-6 after
# normalisation, enough to reorder near-tied detections. infer/test pipelines therefore leave the size alone.
# Schedule and training data: those of ssdlite_mobilenetv2_660e_coco.py (torchvision's recipe, 660 epochs);
# torchvision's "ssdlite" augmentation is its RandomIoUCrop (the paper's rule: some object reaches the drawn IoU,
# options 0.0-0.9 and "keep the image") + flip only (zoom-out hurts such small models), used here.
_base_ = ['./ssdlite_mobilenetv2_660e_coco.py']
input_size = 320
norm = dict(type='bn', eps=0.001, momentum=0.03)
model = dict(
    num_classes=90, label_map={{_base_.coco91_label_map}},
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3,
                           resize=(input_size, input_size)),
    # feature points of the reduced-tail large net: 5 = layer13_expand (672 ch, stride 16), 7 = last_conv (480)
    backbone=dict(_delete_=True, type='MobileNetV3', arch='large', reduced_tail=True, out_indices=(5, 7),
                  norm_layer=norm),
    anchor_generator=dict(reduce_boxes_in_lowest_layer=False),
)
train_pipeline = [
    dict(type='SSDMinIoURandomCrop', min_ious=(0.0, 0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3, iou_rule='any',
         keep_original=True),
    dict(type='Albumentations', transforms=[dict(type='HorizontalFlip', p=0.5)]),
]
test_pipeline = []
infer_pipeline = []
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
benchmark_shape = (3, input_size, input_size)
