# FastDepth (Wofk et al., 2019) on NYU Depth v2, the HDF5 files of the sparse-to-dense release
# (<nyu_root>/train/**/*.h5, <nyu_root>/val/official/*.h5; not shipped). The official labeled .mat with
# splits.mat works too: dataset=dict(layout='mat', split='train'|'test').
_base_ = ['./default_runtime.py']
datasets_root = '{{$MOBILEVISION_DATA:{{ fileDirname }}/../../datasets}}'  # or $MOBILEVISION_DATA
nyu_root = datasets_root + '/nyudepthv2'
# As published (Wofk et al., 2019, and the official code, dwofk/fast-depth): the input is rgb / 255 without
# ImageNet mean/std (dataloaders/nyu.py), the last layer is 1x1 conv + BN + ReLU (models.py, decode_conv6), so
# depth is never negative, and the loaders resample RGB by nearest neighbour (dataloaders/transforms.py).
model = dict(
    type='DepthEstimator', losses=dict(l1=1.0), min_depth=1e-3, max_depth=10.0,
    data_preprocessor=dict(type='DepthDataPreprocessor', mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0)),
    # encoder: set by each config; decoder: NNConv5 with additive skips at strides 8, 4, 2 (section III)
    head=dict(type='NNConv5Decoder', channels=(512, 256, 128, 64, 32), skip_strides=(8, 4, 2), kernel_size=5,
              final_layer='conv_bn_relu'),
)
# 480x640 -> x250/480 -> random scale s in [1, 1.5] (depth / s), rotation +-5 deg, centre crop 228x304,
# flip, colour jitter -> 224x224 (section IV, following Ma & Karaman's sparse-to-dense); RGB and depth nearest
train_pipeline = [dict(type='FastDepthAugment', scale_range=(1.0, 1.5), max_rotation=5.0, jitter=0.4,
                       flip_prob=0.5, crop_size=(228, 304), out_size=(224, 224), interpolation='nearest')]
test_pipeline = [dict(type='FastDepthResizeCrop', crop_size=(228, 304), out_size=(224, 224),
                      interpolation='nearest')]
# any image: resize the whole frame to 224x224 (as the network was trained: nearest); predict maps depth back
infer_pipeline = [dict(type='DepthResize', size=(224, 224), interpolation='nearest')]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='NYUDepthV2', data_root=nyu_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='NYUDepthV2', data_root=nyu_root, split='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
# FastDepth scores the 224x224 output against the transformed ground truth (no Eigen crop at this size)
val_evaluator = dict(type='DepthMetric', max_depth=None, eigen_crop=False)
test_evaluator = val_evaluator
# to score at 480x640 inside the Eigen crop instead (whole frame resized to 224x224, depth mapped back):
#   test_dataloader = dict(dataset=dict(pipeline=[dict(type='DepthResize', size=(224, 224), keep_original=True)]))
#   test_evaluator = dict(type='DepthMetric', resolution='original', eigen_crop=True, max_depth=10.0)
# SGD as in the sparse-to-dense code FastDepth trains with: lr 0.01, momentum 0.9, weight decay 1e-4, batch 8,
# learning rate x0.2 every 5 epochs, 20 epochs
max_epochs = 20
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='StepLR', step_size=5, gamma=0.2, by_epoch=True)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_last=True,
                                     save_best='depth/RMSE', rule='less'))
benchmark_shape = (3, 224, 224)
