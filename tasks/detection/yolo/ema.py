"""Weight EMA with YOLOv5/v8's warming decay, as LeYOLO trains: ``d = decay x (1 - exp(-updates / tau))``.

mmengine 0.10.7 has no such averaged model (its ``ExponentialMovingAverage`` keeps one momentum and
``MomentumAnnealingEMA`` anneals differently), so this subclasses ``ExponentialMovingAverage`` and changes only the
update: ``averaged = d x averaged + (1 - d) x current``. The first update copies the weights; ``updates`` counts the
updates from 1 on. Use it through mmengine's ``EMAHook``: ``dict(type='EMAHook', ema_type='YOLOExpEMA',
decay=0.9999, tau=2000, update_buffers=True)`` (validation and the saved ``state_dict`` then use the average).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from mmengine.model import ExponentialMovingAverage
from torch import nn

from ...registry import TASKS


@TASKS.register_module()
class YOLOExpEMA(ExponentialMovingAverage):
    """EMA whose decay rises from 0 to ``decay`` with time constant ``tau`` updates."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000, interval: int = 1,
                 device: Optional[torch.device] = None, update_buffers: bool = False) -> None:
        if not 0 < decay < 1 or tau <= 0:
            raise ValueError(f'decay must lie in (0, 1) and tau be > 0, got {decay}, {tau}')
        super().__init__(model, momentum=1 - decay, interval=interval, device=device, update_buffers=update_buffers)
        self.decay, self.tau = float(decay), float(tau)

    def decay_at(self, updates: int) -> float:
        return self.decay * (1 - math.exp(-updates / self.tau))

    def avg_func(self, averaged_param: torch.Tensor, source_param: torch.Tensor, steps: int) -> None:
        averaged_param.lerp_(source_param, 1 - self.decay_at(steps))
