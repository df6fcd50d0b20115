"""Probe hook for tests that start tools/train.py (tests/tools/test_ddp.py, test_resume_exact.py,
benchmarks/ddp_gpu_check.py): each rank writes the sample indices it trains on per epoch, the validation metrics
and its final weights under <work_dir>/probe/. With $PROBE_PAUSE_AT_EPOCH=N the run stops before epoch N (0-based),
prints "probe: paused" and waits to be killed, so a test kills it at a known point however loaded the machine is."""
import json
import os
import sys
import time

import torch
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
        indices = [int(i) for i in runner.train_dataloader.sampler]
        with open(self._path(runner, f'shard_rank{get_rank()}_epoch{runner.epoch}.json'), 'w') as f:
            json.dump(indices, f)

    def after_val_epoch(self, runner, metrics=None):
        with open(self._path(runner, f'val_rank{get_rank()}_epoch{runner.epoch}.json'), 'w') as f:
            json.dump({k: float(v) for k, v in (metrics or {}).items()}, f)

    def after_train(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()},
                   self._path(runner, f'weights_rank{get_rank()}.pt'))
