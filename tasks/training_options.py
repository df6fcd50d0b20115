"""Training switches of tools/train.py that edit a config: mixed precision, weight EMA, linear lr scaling.

- AMP: mmengine's ``AmpOptimWrapper`` (autocast + dynamic loss scaling). mmengine 0.10.7 refuses it on devices
  other than CUDA/NPU/MLU/MUSA, so on CPU ``--amp`` is an error rather than a silent float32 run.
- EMA: mmengine's ``EMAHook`` with ``MomentumAnnealingEMA`` (``avg = (1 - m) avg + m w`` with
  ``m = max(momentum, gamma / (gamma + step))``: the average follows the weights early on); validation and the
  checkpoint's ``state_dict`` use the averaged weights, ``ema_state_dict`` keeps the raw ones for resume.
- Linear scaling rule (Goyal et al., 2017, section 2.1): lr x (total batch / the recipe's base batch), where the
  total batch is the per-process ``train_dataloader.batch_size`` times the number of processes. mmengine's
  ``auto_scale_lr`` does the scaling when enabled.
"""
from __future__ import annotations

from typing import MutableMapping, Optional

import torch

__all__ = ['AMP_DTYPES', 'enable_amp', 'enable_ema', 'enable_auto_scale_lr', 'batch_summary']

AMP_DTYPES = ('float16', 'bfloat16')


def enable_amp(cfg: MutableMapping, dtype: str = 'float16') -> None:
    """Train with autocast to ``dtype`` through ``AmpOptimWrapper`` (CUDA only)."""
    if dtype not in AMP_DTYPES:
        raise ValueError(f'--amp {dtype}: choose one of {", ".join(AMP_DTYPES)}')
    if not torch.cuda.is_available():
        raise ValueError('--amp needs a CUDA GPU: mmengine 0.10.7\'s AmpOptimWrapper (autocast and loss scaling) '
                         'refuses the CPU; train in float32 there')
    if dtype == 'bfloat16' and not torch.cuda.is_bf16_supported():
        raise ValueError('--amp bfloat16: this GPU has no bfloat16 support; use --amp float16')
    wrapper = cfg.get('optim_wrapper')
    if not wrapper:
        raise ValueError('--amp: the config has no optim_wrapper')
    kind = wrapper.get('type', 'OptimWrapper')
    if kind not in ('OptimWrapper', 'AmpOptimWrapper', 'mmengine.OptimWrapper', 'mmengine.AmpOptimWrapper'):
        raise ValueError(f'--amp replaces OptimWrapper by AmpOptimWrapper; the config uses {kind}')
    wrapper['type'] = 'AmpOptimWrapper'
    wrapper['dtype'] = dtype
    wrapper.setdefault('loss_scale', 'dynamic')


def enable_ema(cfg: MutableMapping, momentum: float = 0.0002, gamma: int = 100) -> None:
    """Add mmengine's ``EMAHook`` (``MomentumAnnealingEMA``, mmengine's defaults) unless the config has one."""
    if not 0 < momentum < 1:
        raise ValueError(f'--ema {momentum}: the momentum must be in (0, 1)')
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(h.get('type') in ('EMAHook', 'mmengine.EMAHook') for h in hooks):
        hooks.append(dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=momentum, gamma=gamma,
                          update_buffers=True, priority=49))
    cfg['custom_hooks'] = hooks


def enable_auto_scale_lr(cfg: MutableMapping, base_batch_size: Optional[int] = None,
                         config_name: str = 'the config') -> int:
    """Turn on mmengine's linear lr scaling; the base batch comes from the argument or the config's
    ``auto_scale_lr.base_batch_size``. Returns the base batch."""
    current = dict(cfg.get('auto_scale_lr') or {})
    base = base_batch_size or current.get('base_batch_size')
    if not base:
        raise ValueError(f'--auto-scale-lr: {config_name} has no auto_scale_lr.base_batch_size (the total batch '
                         f'its lr was set for); give it as --auto-scale-lr BASE')
    if int(base) <= 0:
        raise ValueError(f'--auto-scale-lr {base}: the base batch must be positive')
    cfg['auto_scale_lr'] = dict(current, enable=True, base_batch_size=int(base))
    return int(base)


def batch_summary(cfg: MutableMapping, world_size: int) -> str:
    """One line: per-process batch, processes, total batch, and the lr rule in force."""
    per_process = int(cfg['train_dataloader']['batch_size'])
    total = per_process * world_size
    scale = cfg.get('auto_scale_lr') or {}
    if scale.get('enable'):
        rule = (f'lr scaled by {total}/{scale["base_batch_size"]} = {total / scale["base_batch_size"]:g} '
                f'(linear scaling rule)')
    else:
        base = scale.get('base_batch_size')
        rule = ('lr as in the config' + (f' (set for a total batch of {base}; --auto-scale-lr scales it)'
                                         if base and base != total else ''))
    return f'batch: {per_process} per process x {world_size} process(es) = {total} in total; {rule}'
