"""NetAdapt-style channel pruning of FastDepth (tasks/depth/pruning.py, tools/prune.py)."""
import json
import runpy
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
from torch import nn

from data.io import read_rgb
from tasks import TASKS, build_model, load_config
from tasks.depth.pruning import channel_groups, group_slopes, prune_fastdepth, prune_state_dict, widths_of
from tasks.profiling import count_macs, count_parameters

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / 'configs' / 'fastdepth_mobilenetv1_20e_nyu.py'
TINY_OPTIONS = dict(backbone=dict(width_mult=0.25), head=dict(channels=(128, 64, 32, 16, 8)))


def tiny_cfg() -> dict:
    cfg = load_config(PAPER)
    cfg.merge_from_dict(dict(model=TINY_OPTIONS))
    return cfg.model.to_dict()


def calibrated(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights with BatchNorm statistics of real activations (a random net's activations vanish)."""
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None                           # cumulative average
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.normal_(0.2, 0.2, generator=generator)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, 64, 64, generator=generator), mode='tensor')
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    return model.eval()


def macs(model, size=64):
    return count_macs(lambda: model(torch.zeros(1, 3, size, size), mode='tensor'))


def test_groups_join_the_additive_skips_and_cover_every_tensor():
    model = TASKS.build(tiny_cfg())
    groups = channel_groups(model)
    assert groups.layers['E1'] == ['E1', 'D3'] and groups.layers['E3'] == ['E3', 'D2']
    assert groups.layers['E5'] == ['E5', 'D1']
    assert len(groups.widths) == 14 + 5 - 3
    assert widths_of(groups, model) == dict(backbone=model.backbone.widths, head=[128, 64, 32, 16, 8])
    producers = [u.prefix for u in groups.producers('E5')]
    assert producers == ['backbone.features.5.pointwise', 'head.stages.1.pointwise']
    # a skip with a 1x1 projection (widths differ) keeps its two sides apart
    cfg = tiny_cfg()
    cfg['head']['channels'] = (128, 48, 32, 16, 8)
    projected = channel_groups(TASKS.build(cfg))
    assert projected.layers['E5'] == ['E5'] and projected.layers['D1'] == ['D1']
    assert [u.prefix for u in projected.producers('D1')] == ['head.stages.1.pointwise', 'head.skip_proj.1']


@pytest.mark.parametrize('group', ['E0', 'E5', 'E13', 'D4'])
def test_per_channel_macs_agree_with_the_counter(group):
    model = TASKS.build(tiny_cfg()).eval()
    groups = channel_groups(model)
    slope = group_slopes(model, groups, torch.zeros(1, 3, 64, 64))[group]
    n = 3
    keep = {group: torch.arange(groups.widths[group] - n)}
    widths = widths_of(groups, model, keep)
    cfg = tiny_cfg()
    cfg['backbone']['widths'], cfg['head']['channels'] = widths['backbone'], widths['head']
    smaller = TASKS.build(cfg)
    smaller.load_state_dict(prune_state_dict(model.state_dict(), groups, keep))   # strict: shapes fit
    assert macs(model) - macs(smaller) == n * slope


def kill_channels(model: nn.Module, channels) -> None:
    """Make ``channels`` of the E5+D1 group (encoder block 5 + decoder stage 1, added by a skip) exactly zero."""
    state = model.state_dict()
    with torch.no_grad():
        for producer in ('backbone.features.5.pointwise', 'head.stages.1.pointwise'):
            state[f'{producer}.0.weight'][channels] = 0
            state[f'{producer}.1.running_mean'][channels] = 0
            state[f'{producer}.1.bias'][channels] = 0
        for consumer in ('backbone.features.6.depthwise', 'head.stages.2.depthwise'):
            state[f'{consumer}.1.running_mean'][channels] = 0
            state[f'{consumer}.1.bias'][channels] = 0


@pytest.mark.parametrize('criterion', ['magnitude', 'distortion'])
def test_dead_filters_of_a_skip_group_go_first_and_the_output_stays(criterion):
    cfg = tiny_cfg()
    model = calibrated(TASKS.build(cfg))
    dead = [1, 6, 7, 20, 33, 60]
    kill_channels(model, dead)
    groups = channel_groups(model)
    slope = group_slopes(model, groups, torch.zeros(1, 3, 64, 64))['E5']
    x = torch.rand(2, 3, 64, 64)
    target = macs(model) - len(dead) * slope
    pruned, widths, steps = prune_fastdepth(model, cfg, target, (3, 64, 64), step=1.0, divisor=1,
                                            min_channels=1, criterion=criterion, calibration=x)
    assert len(steps) == 1 and steps[0].layers == ['E5', 'D1'] and steps[0].score < 1e-6
    assert widths['backbone'][5] == widths['head'][1] == 64 - len(dead)
    assert macs(pruned) == target
    with torch.no_grad():
        reference = model(x, mode='tensor')
        torch.testing.assert_close(pruned(x, mode='tensor'), reference, rtol=1e-5, atol=1e-6)
        # the weights kept are the live ones, in order
        live = [c for c in range(64) if c not in dead]
        torch.testing.assert_close(pruned.head.stages[1].pointwise[0].weight,
                                   model.head.stages[1].pointwise[0].weight[live])


def test_pruning_reaches_the_target_and_checks_its_inputs():
    cfg = tiny_cfg()
    model = calibrated(TASKS.build(cfg))
    start = macs(model)
    pruned, widths, steps = prune_fastdepth(model, cfg, 0.6 * start, (3, 64, 64), step=0.1, divisor=4,
                                            min_channels=4)
    assert abs(steps[-1].macs / (0.6 * start) - 1) < 0.05 and steps[-1].macs <= 0.6 * start
    assert steps[-1].macs == macs(pruned)
    assert [s.macs for s in steps] == sorted((s.macs for s in steps), reverse=True)
    assert all(w % 4 == 0 and w >= 4 for w in widths['backbone'][1:] + widths['head'])
    assert count_parameters(pruned) < count_parameters(model)
    with torch.no_grad():
        assert torch.isfinite(pruned(torch.rand(1, 3, 64, 64), mode='tensor')).all()
    with pytest.raises(ValueError, match='not more than the target'):
        prune_fastdepth(model, cfg, 2 * start, (3, 64, 64))
    with pytest.raises(ValueError, match='calibration'):
        prune_fastdepth(model, cfg, 0.5 * start, (3, 64, 64), criterion='distortion')
    with pytest.raises(RuntimeError, match='minimum width'):
        prune_fastdepth(model, cfg, 0.01 * start, (3, 64, 64), step=0.2, min_channels=16, divisor=8)
    v2 = TASKS.build(dict(cfg, backbone=dict(type='MobileNetV2', width_mult=0.25, out_indices=(0, 1, 2, 8))))
    with pytest.raises(ValueError, match='MobileNetV1'):
        channel_groups(v2)


@pytest.mark.slow
def test_the_paper_network_prunes_from_0_737_to_0_37_gmacs():
    cfg = load_config(PAPER)
    model = build_model(cfg)
    unpruned = macs(model, 224)
    assert abs(unpruned / 1e9 - 0.74) < 0.005   # the paper's unpruned MobileNet-NNConv5 with additive skips
    assert unpruned == 736_658_944
    pruned, widths, steps = prune_fastdepth(model, cfg.model.to_dict(), 0.37e9, (3, 224, 224), step=0.1)
    assert 0.95 * 0.37e9 <= steps[-1].macs <= 0.37e9
    assert count_parameters(pruned) < 0.8 * count_parameters(model)
    with torch.no_grad():
        assert torch.isfinite(pruned(torch.rand(1, 3, 224, 224), mode='tensor')).all()


def nyu_frame_h5(folder: Path, assets: Path, copies: int) -> None:
    rgb = cv2.resize(read_rgb(assets / 'depth' / 'rgb.png'), (640, 480), interpolation=cv2.INTER_NEAREST)
    depth = cv2.resize(np.load(assets / 'depth' / 'depth.npy'), (640, 480), interpolation=cv2.INTER_NEAREST)
    for split in ('train', 'val'):
        (folder / split / 'scene').mkdir(parents=True, exist_ok=True)
        for i in range(copies if split == 'train' else 1):
            with h5py.File(folder / split / 'scene' / f'{i:05d}.h5', 'w') as f:
                f['rgb'], f['depth'] = rgb.transpose(2, 0, 1), depth


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore::DeprecationWarning', 'ignore::torch.jit.TracerWarning')
def test_prune_tool_output_benchmarks_exports_and_fine_tunes(tmp_path, repo, assets):
    base = tmp_path / 'tiny_fastdepth.py'
    base.write_text(f"_base_ = [{str(PAPER)!r}]\nmodel = {TINY_OPTIONS!r}\nbenchmark_shape = (3, 64, 64)\n")
    model = calibrated(build_model(base))
    with torch.no_grad():
        model.head.final[1].bias.fill_(2.5)   # as if trained: about the mean depth of the frame
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'trained.pth')
    start = macs(model)
    prune = runpy.run_path(str(repo / 'tools' / 'prune.py'), run_name='prune')
    out = tmp_path / 'pruned'
    result = prune['main']([str(base), str(tmp_path / 'trained.pth'), '--target-macs', f'{0.5 * start / 1e6}M',
                            '--output', str(out), '--step', '0.1', '--divisor', '4', '--min-channels', '4'])
    config, checkpoint = out / 'tiny_fastdepth_pruned.py', out / 'tiny_fastdepth_pruned.pth'
    assert result['config_file'] == str(config) and result['checkpoint'] == str(checkpoint)
    log = json.loads((out / 'prune_log.json').read_text())
    assert log['macs'] == result['macs'] and len(log['steps']) == len(result['steps'])
    assert abs(result['macs'] / (0.5 * start) - 1) < 0.05

    # the written config builds the pruned widths and loads the pruned weights strictly
    pruned = build_model(config, str(checkpoint))
    assert pruned.backbone.widths == result['widths']['backbone']
    assert load_config(config).load_from == str(checkpoint)
    benchmark = runpy.run_path(str(repo / 'tools' / 'benchmark.py'), run_name='benchmark')
    report = benchmark['main']([str(config), '--runs', '1', '--warmup', '0', '--no-predict', '--json'])
    assert report['macs'] == result['macs'] and report['params'] == result['params'] < count_parameters(model)
    export = runpy.run_path(str(repo / 'tools' / 'export.py'), run_name='export')   # TorchScript exporter: faster
    diffs = export['main']([str(config), str(checkpoint), '--output', str(tmp_path / 'pruned.onnx'), '--legacy'])
    assert diffs and max(diffs) < 1e-4

    # fine-tuning the pruned network with tools/train.py lowers the loss on the NYU frame
    nyu_frame_h5(tmp_path / 'nyu', assets, copies=2)
    finetune = tmp_path / 'finetune.py'
    finetune.write_text(
        f'_base_ = [{str(config)!r}]\n'
        "train_dataloader = dict(dataset=dict(pipeline=[dict(type='FastDepthResizeCrop', "
        "interpolation='nearest')]))\n"
        "optim_wrapper = dict(optimizer=dict(_delete_=True, type='Adam', lr=0.01))\n")
    work = tmp_path / 'work'
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = [f'{k}.{v}' for k in loaders for v in (f'dataset.data_root={tmp_path / "nyu"}', 'num_workers=0',
                                                      'persistent_workers=False', 'batch_size=2')]
    options += ['train_cfg.max_epochs=8', 'train_cfg.val_interval=100', 'default_hooks.logger.interval=1',
                'default_hooks.checkpoint.interval=100']
    train = runpy.run_path(str(repo / 'tools' / 'train.py'), run_name='train')
    train['main']([str(finetune), '--work-dir', str(work), '--cfg-options', *options])
    scalars = [json.loads(line) for line in next(work.rglob('scalars.json')).read_text().splitlines()]
    losses = [s['loss_l1'] for s in scalars if 'loss_l1' in s]
    print(f'fine-tuning L1: {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} iterations')
    assert len(losses) == 8 and np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
