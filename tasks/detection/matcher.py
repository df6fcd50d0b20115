"""SSD matching strategy (Liu et al., 2016, section 2.2 "Matching strategy").

Each ground-truth box is matched to the default box with the best IoU, and every default box is matched to the
ground truth it overlaps most when that IoU is at least ``pos_iou_thr`` (0.5). Boxes flagged ``ignore`` (COCO
crowd, VOC difficult) are never targets: default boxes that are not positive but overlap an ignored box by at least
``pos_iou_thr`` are left out of the loss instead of becoming background.
"""
from __future__ import annotations

from typing import Optional

import torch
from torchvision.ops import box_iou

from ..registry import TASKS

BACKGROUND = -1
IGNORE = -2


@TASKS.register_module()
class SSDMatcher:
    """``match(gt_boxes, anchors, ignore)`` -> per default box: a gt index, ``BACKGROUND`` (-1) or ``IGNORE`` (-2)."""

    def __init__(self, pos_iou_thr: float = 0.5) -> None:
        if not 0.0 < pos_iou_thr <= 1.0:
            raise ValueError(f'pos_iou_thr must be in (0, 1], got {pos_iou_thr}')
        self.pos_iou_thr = pos_iou_thr

    def __call__(self, gt_boxes: torch.Tensor, anchors: torch.Tensor,
                 ignore: Optional[torch.Tensor] = None) -> torch.Tensor:
        n = anchors.shape[0]
        matches = torch.full((n,), BACKGROUND, dtype=torch.long, device=anchors.device)
        if ignore is None:
            ignore = torch.zeros(gt_boxes.shape[0], dtype=torch.bool, device=anchors.device)
        keep = ~ignore
        kept = torch.nonzero(keep).flatten()
        if kept.numel():
            iou = box_iou(gt_boxes[kept], anchors)          # (G, N)
            best_iou, best_gt = iou.max(0)
            positive = best_iou >= self.pos_iou_thr
            matches[positive] = kept[best_gt[positive]]
            # every ground truth keeps its best default box (the last gt wins when two share one, as in SSD)
            best_anchor = iou.argmax(1)
            matches[best_anchor] = kept
        if (~keep).any():
            iou_ignored = box_iou(gt_boxes[~keep], anchors).max(0).values
            matches[(matches == BACKGROUND) & (iou_ignored >= self.pos_iou_thr)] = IGNORE
        return matches
