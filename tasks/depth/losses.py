"""Depth losses over valid pixels (ground truth > 0).

* L1 (FastDepth, section IV: the network is trained with the L1 loss),
* BerHu, the reverse Huber (Laina et al., 2016, eq. 2, with ``c = 0.2 * max |error|`` over the batch),
* scale-invariant log error (Eigen et al., 2014, eq. 4, with ``lambda = 0.5``).
"""
from __future__ import annotations

import torch


def _valid(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if pred.shape != target.shape:
        raise ValueError(f'predicted depth {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape')
    return target > 0


def _empty(pred: torch.Tensor) -> torch.Tensor:
    return pred.sum() * 0.0  # keeps the graph when a batch has no valid pixel


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over valid pixels."""
    mask = _valid(pred, target)
    if not mask.any():
        return _empty(pred)
    return (pred[mask] - target[mask]).abs().mean()


def berhu_loss(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """|x| for |x| <= c, (x^2 + c^2) / 2c beyond, c = ``threshold`` x the largest absolute error (detached)."""
    mask = _valid(pred, target)
    if not mask.any():
        return _empty(pred)
    error = (pred[mask] - target[mask]).abs()
    c = (threshold * error.max()).detach().clamp_min(1e-6)
    return torch.where(error <= c, error, (error ** 2 + c ** 2) / (2 * c)).mean()


def silog_loss(pred: torch.Tensor, target: torch.Tensor, lam: float = 0.5, min_depth: float = 1e-3) -> torch.Tensor:
    """mean(d^2) - lam * mean(d)^2 with d = log(pred) - log(target) per image, averaged over the batch."""
    mask = _valid(pred, target)
    if not mask.any():
        return _empty(pred)
    losses = []
    for p, t, m in zip(pred, target, mask):
        if not m.any():
            continue
        d = torch.log(p[m].clamp_min(min_depth)) - torch.log(t[m])
        losses.append((d ** 2).mean() - lam * d.mean() ** 2)
    return torch.stack(losses).mean()


DEPTH_LOSSES = {'l1': l1_loss, 'berhu': berhu_loss, 'silog': silog_loss}
