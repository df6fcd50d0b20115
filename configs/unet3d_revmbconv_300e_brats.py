# Reversible 3D U-Net with mobile inverted bottlenecks (Pendse et al.) on BraTS (2020-style case folders).
# The BraTS data is not shipped: point `data_root` at the training folder (one folder per case holding
# <case>_{t1,t1ce,t2,flair,seg}.nii.gz).
# Validation is on held-out cases: by default the case folders are split 80/20 by case id (sorted ids shuffled with
# seed `split_seed`, data.datasets.brats.split_cases; BraTS 2020's 369 training cases -> 295 train / 74 val), the
# same split on every machine. To record it or edit it: data.datasets.brats.write_split(data_root, 'brats_split')
# writes brats_split/{train,val}.txt, which `train_cases` / `val_cases` accept (a list or a text file, one case a
# line). Lists that share a case are refused when the datasets are built, naming the shared cases.
_base_ = ['./_base_/default_runtime.py']
datasets_root = '{{$MOBILEVISION_DATA:{{ fileDirname }}/../datasets}}'  # or $MOBILEVISION_DATA
data_root = datasets_root + '/brats/MICCAI_BraTS2020_TrainingData'
train_cases = None          # None: the 'train' part of the held-out split
val_cases = None            # None: the 'val' part
val_fraction = 0.2
split_seed = 0
patch_size = (128, 128, 128)
reversible = True
model = dict(
    type='VolumetricSegmentor', in_channels=4, patch_size=patch_size, overlap=0.5, gaussian=True,
    sigma_scale=0.125, sw_batch_size=1, progress=True, threshold=0.5,
    backbone=dict(type='ReversibleUNet3dEncoder', channels=(16, 32, 64, 128, 256), depths=(1, 1, 2, 2, 4),
                  expand_ratio=4, use_se=True, norm_layer='gn', act_layer='relu6', drop_path=0.1,
                  reversible=reversible),
    head=dict(type='UNet3dHead', depths=(1, 1, 1, 1), expand_ratio=4, norm_layer='gn', act_layer='relu6',
              reversible=reversible),
)
train_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='BraTSDataset', data_root=data_root, cases=train_cases, split='train', other_cases=val_cases,
                 val_fraction=val_fraction, split_seed=split_seed,
                 pipeline=[dict(type='RandomVolumePatch', patch_size=patch_size, fg_ratio=0.33),
                           dict(type='RandomVolumeFlip', prob=0.5),
                           dict(type='RandomIntensityShiftScale', shift=0.1, scale=0.1)]))
val_dataloader = dict(
    batch_size=1, num_workers=1, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='mobilevision.sample_list_collate'),
    dataset=dict(type='BraTSDataset', data_root=data_root, cases=val_cases, split='val', other_cases=train_cases,
                 val_fraction=val_fraction, split_seed=split_seed))
test_dataloader = val_dataloader
val_evaluator = dict(type='BraTSMetric')
test_evaluator = val_evaluator
infer_pipeline = []         # read_input already z-scores each modality inside the brain mask
max_epochs = 300
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=25)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-5))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-6, by_epoch=True,
                        convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2, save_last=True,
                                     save_best='brats/Dice_mean', rule='greater'))
benchmark_shape = (4, 32, 32, 32)   # a small 4-modality volume for tools/benchmark.py and tools/export.py
