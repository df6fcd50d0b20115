"""SSD box encoding (Liu et al., 2016, eq. 2) with the variances (0.1, 0.1, 0.2, 0.2) of the reference code.

``d = ((gx - ax) / (aw v0), (gy - ay) / (ah v1), log(gw / aw) / v2, log(gh / ah) / v3)`` between centre/size forms of a
ground-truth box ``g`` and a default box ``a``; decoding inverts it, with the log-size deltas clamped at
``log(1000 / 16)`` so that an untrained network cannot overflow ``exp``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from ..registry import TASKS


def _cxcywh(boxes: torch.Tensor):
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


@TASKS.register_module()
class DeltaXYWHCoder:
    """Encode xyxy boxes against default boxes as scaled centre/log-size deltas, and decode them back."""

    def __init__(self, variances: Sequence[float] = (0.1, 0.1, 0.2, 0.2), clip_log: float = math.log(1000.0 / 16)):
        if len(variances) != 4 or any(v <= 0 for v in variances):
            raise ValueError(f'variances must be 4 positive numbers, got {list(variances)}')
        self.weights = [1.0 / v for v in variances]
        self.clip_log = clip_log

    def encode(self, boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        wx, wy, ww, wh = self.weights
        gx, gy, gw, gh = _cxcywh(boxes)
        ax, ay, aw, ah = _cxcywh(anchors)
        return torch.stack([wx * (gx - ax) / aw, wy * (gy - ay) / ah, ww * torch.log(gw / aw),
                            wh * torch.log(gh / ah)], -1)

    def decode(self, deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """``deltas`` (..., N, 4) against ``anchors`` (N, 4) -> xyxy boxes (..., N, 4)."""
        wx, wy, ww, wh = self.weights
        ax, ay, aw, ah = _cxcywh(anchors.to(deltas.dtype))
        dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
        dw = (deltas[..., 2] / ww).clamp(max=self.clip_log)
        dh = (deltas[..., 3] / wh).clamp(max=self.clip_log)
        cx, cy = dx * aw + ax, dy * ah + ay
        w, h = torch.exp(dw) * aw, torch.exp(dh) * ah
        half_w, half_h = 0.5 * w, 0.5 * h
        return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1)
