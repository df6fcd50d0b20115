"""``YOLOBiasWarmupHook``: the bias learning-rate warm-up of YOLOv5/v8's recipe (as LeYOLO trains).

During the first ``warmup_epochs`` (at least ``min_warmup_iters`` iterations) every other parameter's lr rises
linearly from ~0 (mmengine's ``LinearLR`` does that), while the biases start high and come down:
``lr_bias = warmup_bias_lr x (1 - t) + lr_scheduled``, ``t`` = fraction of the warm-up done (``lr_scheduled`` is
itself ~``t`` x the target lr, so this is YOLOv8's ``interp(t, [0, 1], [0.1, lr])``). The schedulers' own value is
put back after every iteration, so chained mmengine schedulers keep working on their values.

Biases are recognised by name (``*.bias``: conv and norm biases) in optimizer groups holding exactly one parameter,
which is how mmengine's optimizer constructor builds the groups when ``paramwise_cfg`` is given.
"""
from __future__ import annotations

from typing import Dict, Optional

from mmengine.hooks import Hook

from ...registry import HOOKS


@HOOKS.register_module()
class YOLOBiasWarmupHook(Hook):
    """Bias lr from ``warmup_bias_lr`` down to the scheduled lr over the warm-up."""

    priority = 'NORMAL'  # after_train_iter runs before ParamSchedulerHook (LOW) steps the schedulers

    def __init__(self, warmup_epochs: float = 3, warmup_bias_lr: float = 0.1, min_warmup_iters: int = 100) -> None:
        if warmup_epochs < 0 or warmup_bias_lr < 0:
            raise ValueError(f'warmup_epochs and warmup_bias_lr must be >= 0, got {warmup_epochs}, {warmup_bias_lr}')
        self.warmup_epochs, self.warmup_bias_lr = float(warmup_epochs), float(warmup_bias_lr)
        self.min_warmup_iters = int(min_warmup_iters)
        self._saved: Dict[int, float] = {}
        self._bias_groups: Optional[list] = None

    def _groups(self, runner) -> list:
        if self._bias_groups is None:
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            names = {id(p): n for n, p in model.named_parameters()}
            optimizer = runner.optim_wrapper.optimizer
            self._bias_groups = [g for g in optimizer.param_groups
                                 if len(g['params']) == 1 and names.get(id(g['params'][0]), '').endswith('.bias')]
        return self._bias_groups

    def warmup_iters(self, runner) -> int:
        per_epoch = len(runner.train_dataloader)
        return max(int(round(self.warmup_epochs * per_epoch)), self.min_warmup_iters) if self.warmup_epochs else 0

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        total = self.warmup_iters(runner)
        if runner.iter >= total:
            return
        t = runner.iter / total
        self._saved = {}
        for group in self._groups(runner):
            self._saved[id(group)] = group['lr']
            group['lr'] = self.warmup_bias_lr * (1 - t) + group['lr']

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._saved:
            return
        for group in self._groups(runner):
            if id(group) in self._saved:
                group['lr'] = self._saved[id(group)]
        self._saved = {}
