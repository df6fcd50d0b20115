# A CPU-sized reversible 3D U-Net trained on synthetic four-modality cases with tumour-like blobs
# (data.datasets.brats.SyntheticBraTS): a smoke run of tools/train.py, test.py, infer.py and export.py.
_base_ = ['./unet3d_revmbconv_300e_brats.py']
patch_size = (32, 32, 32)
model = dict(
    patch_size=patch_size, progress=False,
    backbone=dict(channels=(8, 16, 32), depths=(1, 1, 2), expand_ratio=2, use_se=False, drop_path=0.0),
    head=dict(depths=(1, 1), expand_ratio=2))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='SyntheticBraTS', num_cases=8, shape=(32, 32, 32), seed=0, num_samples=40,
                 pipeline=[dict(type='RandomVolumeFlip', prob=0.5),
                           dict(type='RandomIntensityShiftScale', shift=0.1, scale=0.1)]))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='SyntheticBraTS', num_cases=2, shape=(32, 32, 32), seed=1000))
test_dataloader = val_dataloader
max_epochs = 20
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
optim_wrapper = dict(optimizer=dict(lr=5e-3))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5, by_epoch=True,
                        convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(_delete_=True, type='CheckpointHook', interval=10, max_keep_ckpts=1,
                                     save_last=True))
benchmark_shape = (4, 32, 32, 32)
