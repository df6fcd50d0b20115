"""Probe hook for tests that start tools/train.py (tests/tools/test_ddp.py, test_resume_exact.py,
benchmarks/ddp_gpu_check.py): each rank writes the sample indices it trains on per epoch, the validation metrics
and its final weights under <work_dir>/probe/. With $PROBE_PAUSE_AT_EPOCH=N the run stops before epoch N (0-based;
$PROBE_PAUSE_AT_ITER=N: before iteration N), prints "probe: paused" and waits to be killed, so a test kills it at
a known point however loaded the machine is."""
import json
import os
import sys
import time

import torch
from mmengine.dataset import InfiniteSampler
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DDPProbeHook(Hook):
    priority = 'LOW'  # after DistSamplerSeedHook has set the epoch

    def _path(self, runner, name):
        folder = os.path.join(runner.work_dir, 'probe')
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, name)

    def before_train_epoch(self, runner):
        if os.environ.get('PROBE_PAUSE_AT_EPOCH') == str(runner.epoch):
            print(f'probe: paused before epoch {runner.epoch} on rank {get_rank()}', flush=True)
            time.sleep(600)
            sys.exit('probe: not killed within 600 s')
        sampler = runner.train_dataloader.sampler
        if isinstance(sampler, InfiniteSampler):  # endless: nothing to list
            return
        indices = [int(i) for i in sampler]
        with open(self._path(runner, f'shard_rank{get_rank()}_epoch{runner.epoch}.json'), 'w') as f:
            json.dump(indices, f)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if os.environ.get('PROBE_PAUSE_AT_ITER') == str(runner.iter):
            print(f'probe: paused before iteration {runner.iter} on rank {get_rank()}', flush=True)
            time.sleep(600)
            sys.exit('probe: not killed within 600 s')

    def after_val_epoch(self, runner, metrics=None):
        with open(self._path(runner, f'val_rank{get_rank()}_epoch{runner.epoch}.json'), 'w') as f:
            json.dump({k: float(v) for k, v in (metrics or {}).items()}, f)

    def after_train(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()},
                   self._path(runner, f'weights_rank{get_rank()}.pt'))


def tiny_espcn_config(repo, folder, epochs: int, num_samples: int, val_samples=None, max_iters=None) -> str:
    """Write a config that trains ESPCN x2 on random crops of the shipped Set5 images (batch 4 per process) with
    this probe, validating on Set5 (all 5 images, or ``val_samples``) after every epoch; return its path.
    With ``max_iters`` the loop is iteration-based (``InfiniteSampler``, a checkpoint and a validation every
    ``max_iters // epochs`` iterations)."""
    repo, folder = os.fspath(repo), os.fspath(folder)
    set5 = os.path.join(repo, 'tests', 'assets', 'sr', 'Set5')
    val = f"val_dataloader = dict(dataset=dict(num_samples={val_samples}))\n" if val_samples else ''
    if max_iters:
        every = max_iters // epochs
        loop = f"""train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={max_iters},
                 val_interval={every})
param_scheduler = [dict(type='CosineAnnealingLR', T_max={max_iters}, eta_min=1e-5, by_epoch=False)]
log_processor = dict(by_epoch=False)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval={every}, max_keep_ckpts=2), logger=dict(interval=2))
"""
        sampler = "sampler=dict(type='InfiniteSampler', shuffle=True), "
    else:
        loop = f"""train_cfg = dict(max_epochs={epochs}, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2), logger=dict(interval=2))
"""
        sampler = ''
    path = os.path.join(folder, 'tiny_espcn.py')
    with open(path, 'w') as f:
        f.write(f"""_base_ = [r'{os.path.join(repo, 'configs', 'espcn_x2_500e_t91.py')}']
custom_imports = dict(imports=['ddp_probe'], allow_failed_imports=False)
custom_hooks = [dict(type='DDPProbeHook')]
train_dataloader = dict(batch_size=4, {sampler}dataset=dict(data_root=r'{set5}', num_samples={num_samples}))
{val}val_evaluator = dict(baseline=False)
{loop}""")
    return path
