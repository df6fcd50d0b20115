# FastDepth decoder on a MobileNetV2 encoder (an option; the paper uses MobileNetV1). Skips come from stage0
# (16/2), stage1 (24/4) and stage2 (32/8), projected by 1x1 conv-BN-ReLU to the decoder widths; the decoder
# starts from the 1280-channel last convolution (stride 32). ImageNet weights: model.backbone.pretrained =
# a torchvision mobilenet_v2 state dict (converted on load).
# This option keeps what suits torchvision's ImageNet weights rather than the paper's recipe: ImageNet mean/std
# normalisation, a plain 1x1 convolution as the last layer and bilinear (area when shrinking) RGB resampling.
_base_ = ['./_base_/fastdepth_nyu.py']
model = dict(backbone=dict(type='MobileNetV2', width_mult=1.0, out_indices=(0, 1, 2, 8)),
             data_preprocessor=dict(type='DepthDataPreprocessor', mean=(123.675, 116.28, 103.53),
                                    std=(58.395, 57.12, 57.375)),
             head=dict(final_layer='conv'))
train_pipeline = [dict(type='FastDepthAugment', scale_range=(1.0, 1.5), max_rotation=5.0, jitter=0.4,
                       flip_prob=0.5, crop_size=(228, 304), out_size=(224, 224), interpolation='linear')]
test_pipeline = [dict(type='FastDepthResizeCrop', crop_size=(228, 304), out_size=(224, 224),
                      interpolation='linear')]
infer_pipeline = [dict(type='DepthResize', size=(224, 224), interpolation='linear')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
