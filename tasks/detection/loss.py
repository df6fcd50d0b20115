"""SSD training objective (Liu et al., 2016, section 2.2 "Training objective" and "Hard negative mining").

``L = (L_conf + L_loc) / N`` with ``N`` the number of positive default boxes in the batch (at least 1, so images
without objects give a finite loss): smooth-L1 between predicted and encoded ground-truth deltas on positives, and
softmax cross-entropy on positives plus the highest-loss negatives, at most ``neg_pos_ratio`` (3) per positive of
the same image.
"""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn.functional as F

from ..registry import TASKS
from .box_coder import DeltaXYWHCoder
from .matcher import BACKGROUND, IGNORE, SSDMatcher


@TASKS.register_module()
class SSDLoss:
    """``loss(cls_logits, deltas, anchors, gt_boxes, gt_labels, gt_ignore)`` -> ``{'loss_cls', 'loss_bbox'}``.

    ``cls_logits`` (B, N, K+1) with background at column 0, ``deltas`` (B, N, 4), per-image lists of gt boxes
    (G, 4), labels (G,) in 0..K-1 and ignore flags (G,). ``min_negatives_per_image`` lets images without objects
    still teach the background (0 = the paper; only negatives of images with objects are mined then).
    """

    def __init__(self, neg_pos_ratio: float = 3.0, min_negatives_per_image: int = 0, beta: float = 1.0,
                 loc_weight: float = 1.0) -> None:
        if neg_pos_ratio < 0 or min_negatives_per_image < 0:
            raise ValueError('neg_pos_ratio and min_negatives_per_image must be >= 0')
        self.neg_pos_ratio, self.min_negatives = neg_pos_ratio, min_negatives_per_image
        self.beta, self.loc_weight = beta, loc_weight

    def targets(self, anchors: torch.Tensor, gt_boxes: List[torch.Tensor], gt_labels: List[torch.Tensor],
                gt_ignore: List[torch.Tensor], matcher: SSDMatcher, coder: DeltaXYWHCoder):
        """Class targets (B, N) (0 = background, -1 = ignored) and delta targets (B, N, 4)."""
        cls_t, reg_t = [], []
        for boxes, labels, ignore in zip(gt_boxes, gt_labels, gt_ignore):
            matches = matcher(boxes, anchors, ignore)
            cls = torch.zeros_like(matches)
            pos = matches >= 0
            cls[pos] = labels[matches[pos]] + 1
            cls[matches == IGNORE] = -1
            reg = torch.zeros_like(anchors)
            if pos.any():
                reg[pos] = coder.encode(boxes[matches[pos]], anchors[pos])
            cls_t.append(cls)
            reg_t.append(reg)
        return torch.stack(cls_t), torch.stack(reg_t)

    def __call__(self, cls_logits: torch.Tensor, deltas: torch.Tensor, cls_targets: torch.Tensor,
                 reg_targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        positive = cls_targets > 0
        valid = cls_targets >= 0
        num_pos = positive.sum()
        normaliser = num_pos.clamp(min=1).to(cls_logits.dtype)
        ce = F.cross_entropy(cls_logits.flatten(0, 1), cls_targets.clamp(min=0).flatten(),
                             reduction='none').view_as(cls_targets)
        # hard negative mining: rank the negatives of each image by their loss
        neg_loss = ce.detach().clone()
        neg_loss[positive | ~valid] = -float('inf')
        order = neg_loss.argsort(1, descending=True)
        rank = order.argsort(1)
        num_neg = (self.neg_pos_ratio * positive.sum(1, keepdim=True)).long().clamp(min=self.min_negatives)
        num_neg = torch.minimum(num_neg, (valid & ~positive).sum(1, keepdim=True))
        negative = rank < num_neg
        loss_cls = (ce[positive].sum() + ce[negative].sum()) / normaliser
        loss_bbox = F.smooth_l1_loss(deltas[positive], reg_targets[positive], beta=self.beta,
                                     reduction='sum') / normaliser
        return {'loss_cls': loss_cls, 'loss_bbox': self.loc_weight * loss_bbox}
