"""Region-based losses for BraTS (Isensee et al., 2018, "No New-Net", section 2.3; Myronenko, 2018): the network
predicts the three nested regions WT, TC, ET as independent sigmoid maps, trained with binary cross-entropy plus a
soft Dice loss per region (Milletari et al., 2016, V-Net, eq. 1 without squares in the denominator).
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F

#: output channel order of the model and the BraTS labels of each region
REGION_ORDER: Tuple[str, ...] = ('WT', 'TC', 'ET')
REGION_LABELS: Dict[str, Tuple[int, ...]] = {'WT': (1, 2, 4), 'TC': (1, 4), 'ET': (4,)}


def labels_to_regions(labels: torch.Tensor) -> torch.Tensor:
    """``B x D x H x W`` BraTS labels -> ``B x 3 x D x H x W`` float targets (WT, TC, ET); 3 counts as 4."""
    labels = torch.where(labels == 3, torch.full_like(labels, 4), labels)
    maps = []
    for name in REGION_ORDER:
        region = torch.zeros_like(labels, dtype=torch.bool)
        for value in REGION_LABELS[name]:
            region |= labels == value
        maps.append(region)
    return torch.stack(maps, dim=1).float()


def regions_to_labels(regions: torch.Tensor) -> torch.Tensor:
    """``B x 3 x ...`` boolean (WT, TC, ET) -> ``B x ...`` BraTS labels: WT -> 2, then TC -> 1, then ET -> 4."""
    wt, tc, et = regions.unbind(dim=1)
    labels = torch.zeros_like(wt, dtype=torch.uint8)
    labels[wt] = 2
    labels[tc] = 1
    labels[et] = 4
    return labels


def soft_dice_loss(logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """``1 - mean_k (2 sum(p t) + s) / (sum p + sum t + s)`` with sums over the batch and voxels (batch Dice)."""
    probs = torch.sigmoid(logits)
    dims = (0,) + tuple(range(2, logits.dim()))
    intersection = (probs * targets).sum(dims)
    total = probs.sum(dims) + targets.sum(dims)
    return 1.0 - ((2 * intersection + smooth) / (total + smooth)).mean()


def region_losses(logits: torch.Tensor, labels: torch.Tensor, dice_weight: float = 1.0,
                  bce_weight: float = 1.0) -> Dict[str, torch.Tensor]:
    """``{'loss_dice', 'loss_bce'}`` of region logits against BraTS label maps."""
    if logits.shape[0] != labels.shape[0] or logits.shape[2:] != labels.shape[1:]:
        raise ValueError(f'logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}')
    targets = labels_to_regions(labels)
    return dict(loss_dice=dice_weight * soft_dice_loss(logits, targets),
                loss_bce=bce_weight * F.binary_cross_entropy_with_logits(logits, targets))
