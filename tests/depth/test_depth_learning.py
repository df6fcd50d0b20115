"""FastDepth learns depth on rendered scenes; the config trains and validates through mmengine's Runner."""
import json
import runpy

import cv2
import h5py
import numpy as np
import pytest
import torch

from data import METRICS
from data.io import read_rgb
from depth_scenes import render_scene
from tasks import TASKS


@pytest.mark.slow
def test_short_training_reaches_delta1_above_0_8_on_rendered_scenes():
    rng = np.random.default_rng(0)
    scenes = [render_scene(rng, size=64) for _ in range(8)]
    samples = [dict(img=image, gt_depth=depth, meta=dict(img_id=f'scene{i}', ori_shape=(64, 64)))
               for i, (image, depth) in enumerate(scenes)]
    model = TASKS.build(dict(type='DepthEstimator', losses='l1',
                             backbone=dict(type='MobileNetV1', width_mult=0.25, out_indices=(0, 1, 2, 4)),
                             head=dict(type='NNConv5Decoder', channels=(128, 64, 32, 16, 8), bias_init=3.0)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def score():
        model.eval()
        metric = METRICS.build(dict(type='DepthMetric'))
        with torch.no_grad():
            metric.process(samples, model(**model.data_preprocessor(samples, False), mode='predict'))
        return metric.evaluate(len(samples))

    before = score()
    for _ in range(80):
        model.train()
        loss = model(**model.data_preprocessor(samples, True), mode='loss')['loss_l1']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = score()
    all_depths = np.concatenate([d.ravel() for _, d in scenes])
    constant = METRICS.build(dict(type='DepthMetric'))    # the best single depth guess, for comparison
    constant.process(samples, [dict(depth=np.full((64, 64), np.median(all_depths), np.float32))] * len(samples))
    baseline = constant.evaluate(len(samples))
    print(f"delta1 {before['depth/delta1']:.3f} -> {after['depth/delta1']:.3f} (constant guess "
          f"{baseline['depth/delta1']:.3f}); RMSE {before['depth/RMSE']:.3f} -> {after['depth/RMSE']:.3f} m")
    assert after['depth/delta1'] > 0.8
    assert after['depth/delta1'] > baseline['depth/delta1'] + 0.3
    assert after['depth/RMSE'] < 0.5 * before['depth/RMSE']


@pytest.mark.slow
def test_training_generalises_to_unseen_rendered_scenes():
    rng = np.random.default_rng(0)

    def scenes(n):
        return [dict(img=image, gt_depth=depth, meta=dict(ori_shape=(64, 64)))
                for image, depth in (render_scene(rng, size=64) for _ in range(n))]

    train, held_out = scenes(64), scenes(16)
    model = TASKS.build(dict(type='DepthEstimator',
                             backbone=dict(type='MobileNetV1', width_mult=0.25, out_indices=(0, 1, 2, 4)),
                             head=dict(type='NNConv5Decoder', channels=(128, 64, 32, 16, 8), bias_init=3.0)))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(150):
        model.train()
        batch = [train[i] for i in np.random.default_rng(step).choice(len(train), 16, replace=False)]
        loss = model(**model.data_preprocessor(batch, True), mode='loss')['loss_l1']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    metric = METRICS.build(dict(type='DepthMetric'))
    with torch.no_grad():
        metric.process(held_out, model(**model.data_preprocessor(held_out, False), mode='predict'))
    result = metric.evaluate(len(held_out))
    print(f"held-out delta1 {result['depth/delta1']:.3f}, RMSE {result['depth/RMSE']:.3f} m")
    assert result['depth/delta1'] > 0.8


@pytest.mark.slow
def test_config_trains_and_validates_with_the_runner(tmp_path, repo, assets):
    rgb = cv2.resize(read_rgb(assets / 'depth' / 'rgb.png'), (640, 480))
    depth = cv2.resize(np.load(assets / 'depth' / 'depth.npy'), (640, 480), interpolation=cv2.INTER_NEAREST)
    for split, n in (('train', 2), ('val', 1)):
        for i in range(n):
            (tmp_path / split / 'scene').mkdir(parents=True, exist_ok=True)
            with h5py.File(tmp_path / split / 'scene' / f'{i:05d}.h5', 'w') as f:
                f['rgb'], f['depth'] = rgb.transpose(2, 0, 1), depth
    train = runpy.run_path(str(repo / 'tools' / 'train.py'), run_name='train')
    work = tmp_path / 'work'
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = [f'{k}.{v}' for k in loaders for v in (f'dataset.data_root={tmp_path}', 'num_workers=0',
                                                      'persistent_workers=False', 'batch_size=2')]
    options += ['model.backbone.width_mult=0.25', 'model.head.channels=[128,64,32,16,8]',
                'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    train['main'](['configs/fastdepth_mobilenetv1_20e_nyu.py', '--work-dir', str(work), '--cfg-options', *options])
    scalars = [json.loads(line) for line in next(work.rglob('scalars.json')).read_text().splitlines()]
    assert any('loss_l1' in s for s in scalars)
    val = [s for s in scalars if 'depth/RMSE' in s]
    assert val and 0 < val[-1]['depth/RMSE'] < 20 and 0 <= val[-1]['depth/delta1'] <= 1
    assert (work / 'epoch_1.pth').is_file()
