"""Pixel-wise cross-entropy for semantic segmentation, with ignore index, class weights and OHEM.

OHEM (online hard example mining, Wu et al., 2016, "Bridging category-level and instance-level semantic image
segmentation"; used by PSPNet/ICNet): only pixels whose predicted probability of the true class is below
``ohem_thresh`` count, but never fewer than ``ohem_min_kept`` (the hardest ones then set the threshold).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class SegCrossEntropy(nn.Module):
    """``loss(logits BxKxHxW, target BxHxW int64)`` -> scalar; ``target == ignore_index`` pixels are skipped."""

    def __init__(self, ignore_index: int = 255, class_weight: Optional[Sequence[float]] = None,
                 ohem_thresh: Optional[float] = None, ohem_min_kept: int = 100_000) -> None:
        super().__init__()
        if ohem_thresh is not None and not 0.0 < ohem_thresh <= 1.0:
            raise ValueError(f'ohem_thresh must be in (0, 1], got {ohem_thresh}')
        if ohem_min_kept < 0:
            raise ValueError(f'ohem_min_kept must be >= 0, got {ohem_min_kept}')
        self.ignore_index, self.ohem_thresh, self.ohem_min_kept = ignore_index, ohem_thresh, ohem_min_kept
        weight = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
        self.register_buffer('class_weight', weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[-2:] != target.shape[-2:] or logits.shape[0] != target.shape[0]:
            raise ValueError(f'logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in size')
        num_classes = logits.shape[1]
        if self.class_weight is not None and self.class_weight.numel() != num_classes:
            raise ValueError(f'class_weight has {self.class_weight.numel()} entries for {num_classes} classes')
        bad = (target != self.ignore_index) & ((target < 0) | (target >= num_classes))
        if bool(bad.any()):
            raise ValueError(f'target labels {sorted(target[bad].unique().tolist())[:8]} are outside 0..'
                             f'{num_classes - 1} and the ignore index {self.ignore_index}')
        if self.ohem_thresh is None:
            return F.cross_entropy(logits, target, weight=self.class_weight, ignore_index=self.ignore_index)
        per_pixel = F.cross_entropy(logits, target, weight=self.class_weight, ignore_index=self.ignore_index,
                                    reduction='none')
        keep = self._ohem_mask(logits, target)
        if self.class_weight is not None:
            weights = self.class_weight[target.clamp(0, num_classes - 1)] * keep
        else:
            weights = keep.float()
        return (per_pixel * keep).sum() / weights.sum().clamp(min=1e-12)

    @torch.no_grad()
    def _ohem_mask(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != self.ignore_index
        prob = logits.softmax(1).gather(1, target.clamp(0, logits.shape[1] - 1).unsqueeze(1)).squeeze(1)
        valid_prob = prob[valid]
        if valid_prob.numel() == 0:
            return valid
        threshold = torch.tensor(self.ohem_thresh, dtype=prob.dtype, device=prob.device)
        if self.ohem_min_kept > 0:
            k = min(self.ohem_min_kept, valid_prob.numel()) - 1
            kth = valid_prob.kthvalue(k + 1).values
            threshold = torch.maximum(threshold, kth)
        return valid & (prob <= threshold) if self.ohem_min_kept > 0 else valid & (prob < threshold)
