"""Task-aligned assignment of anchor points to ground-truth boxes (TOOD, Feng et al., 2021, Sec. 3.2.1).

For every ground truth ``g`` and anchor point ``n``:

1. ``n`` is a *candidate* of ``g`` when its centre lies strictly inside ``g`` (all four edge distances > 1e-9);
   with ``min_gt_side`` a box smaller than that is widened about its centre for this test only, so tiny objects
   still own a point.
2. The alignment metric is ``t = s ** alpha * u ** beta`` (TOOD eq. 3) with ``s`` the predicted score of ``g``'s
   class at ``n`` and ``u`` the complete IoU (CIoU, Zheng et al., 2020) between ``g`` and the box predicted at
   ``n``, clamped at 0; ``t = u = 0`` for non-candidates.
3. The ``topk`` candidates of largest ``t`` are ``g``'s positives (TOOD Sec. 3.2.1, "m anchors with the largest t").
4. A point that is a positive of several ground truths keeps the one with the largest CIoU.
5. The soft target of a positive is ``t * max_u / (max_t + 1e-9)`` at ``g``'s class (TOOD eq. 10, the normalised
   ``t-hat``), with ``max_t`` and ``max_u`` the largest ``t`` and ``u`` over ``g``'s positives.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn
from torchvision.ops import complete_box_iou_loss

from ...registry import TASKS

EPS = 1e-9


def points_inside_boxes(points: torch.Tensor, boxes: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Points (N, 2) and boxes (B, M, 4) xyxy -> (B, M, N) bool: every edge distance of the point > ``eps``."""
    p = points[None, None]  # (1, 1, N, 2)
    lt = p - boxes[..., None, :2]
    rb = boxes[..., None, 2:] - p
    return torch.cat([lt, rb], -1).amin(-1) > eps


def pair_ciou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Complete IoU of matching rows of two (P, 4) xyxy box sets (torchvision's CIoU loss is ``1 - CIoU``)."""
    return 1.0 - complete_box_iou_loss(boxes1, boxes2, reduction='none')


@TASKS.register_module()
class TaskAlignedAssigner(nn.Module):
    """Assign anchor points to ground truths by the task-alignment metric of TOOD (see the module docstring).

    ``forward(pd_scores, pd_bboxes, anchor_points, gt_labels, gt_bboxes, gt_mask)`` takes sigmoid scores
    (B, N, K), decoded predicted boxes (B, N, 4) xyxy in pixels, anchor points (N, 2) in pixels, ground-truth
    labels (B, M, 1), boxes (B, M, 4) xyxy in pixels and a validity mask (B, M, 1) (0 on padding rows), and returns
    a dict of

    * ``fg_mask`` (B, N) bool: positives;
    * ``assigned_gt`` (B, N) int64: index of the matched ground truth, -1 on background;
    * ``target_labels`` (B, N) int64: its class, ``num_classes`` (K) on background;
    * ``target_bboxes`` (B, N, 4): its box, zeros on background;
    * ``target_scores`` (B, N, K): the normalised alignment at the class of the match, zeros elsewhere.

    Inputs are treated as constants (call it on detached predictions).
    """

    def __init__(self, topk: int = 10, alpha: float = 0.5, beta: float = 6.0,
                 min_gt_side: Optional[float] = None) -> None:
        super().__init__()
        if topk < 1:
            raise ValueError(f'topk must be >= 1, got {topk}')
        if min_gt_side is not None and min_gt_side <= 0:
            raise ValueError(f'min_gt_side must be positive or None, got {min_gt_side}')
        self.topk = int(topk)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.min_gt_side = min_gt_side

    def _candidate_boxes(self, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """The boxes used for the centre-inside test: ``gt_bboxes`` with sides widened to ``min_gt_side``."""
        if self.min_gt_side is None:
            return gt_bboxes
        centre = 0.5 * (gt_bboxes[..., :2] + gt_bboxes[..., 2:])
        half = 0.5 * (gt_bboxes[..., 2:] - gt_bboxes[..., :2]).clamp(min=float(self.min_gt_side))
        return torch.cat([centre - half, centre + half], -1)

    @torch.no_grad()
    def forward(self, pd_scores: torch.Tensor, pd_bboxes: torch.Tensor, anchor_points: torch.Tensor,
                gt_labels: torch.Tensor, gt_bboxes: torch.Tensor, gt_mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        batch, num_points, num_classes = pd_scores.shape
        num_gts = gt_bboxes.shape[1]
        device = pd_scores.device
        if num_gts == 0 or num_points == 0:
            return dict(fg_mask=torch.zeros(batch, num_points, dtype=torch.bool, device=device),
                        assigned_gt=torch.full((batch, num_points), -1, dtype=torch.long, device=device),
                        target_labels=torch.full((batch, num_points), num_classes, dtype=torch.long, device=device),
                        target_bboxes=pd_bboxes.new_zeros(batch, num_points, 4),
                        target_scores=pd_scores.new_zeros(batch, num_points, num_classes))
        labels = gt_labels.reshape(batch, num_gts).long()
        valid = gt_mask.reshape(batch, num_gts).bool()
        if bool(((labels < 0) | (labels >= num_classes))[valid].any()):
            raise ValueError(f'gt_labels must lie in [0, {num_classes}), got {labels[valid].unique().tolist()}')

        # 1. candidates: valid ground truths whose (possibly widened) box strictly contains the point
        candidate = points_inside_boxes(anchor_points, self._candidate_boxes(gt_bboxes)) & valid[..., None]

        # 2. alignment metric t = s^alpha * u^beta on candidates (CIoU clamped at 0), computed on candidate pairs
        # only: memory follows the number of candidates, not B x M x N
        b_idx, m_idx, n_idx = candidate.nonzero(as_tuple=True)
        u = pair_ciou(gt_bboxes[b_idx, m_idx].float(), pd_bboxes[b_idx, n_idx].float()).clamp(min=0).nan_to_num(0.0)
        s = pd_scores[b_idx, n_idx, labels[b_idx, m_idx]].float()
        overlaps = torch.zeros(batch, num_gts, num_points, device=device)
        overlaps[b_idx, m_idx, n_idx] = u
        align = torch.zeros_like(overlaps)
        align[b_idx, m_idx, n_idx] = s.pow(self.alpha) * u.pow(self.beta)

        # 3. top-k candidates per ground truth by t
        k = min(self.topk, num_points)
        ranked = torch.where(candidate, align, torch.full_like(align, -1.0))
        topk_idx = ranked.topk(k, dim=-1).indices
        in_topk = torch.zeros_like(candidate).scatter_(-1, topk_idx, True)
        positive = in_topk & candidate  # (B, M, N)

        # 4. a point claimed by several ground truths keeps the largest CIoU
        claims = positive.sum(1)  # (B, N)
        if bool((claims > 1).any()):
            best = torch.where(positive, overlaps, torch.full_like(overlaps, -1.0)).argmax(1)  # (B, N)
            keep = torch.zeros_like(positive).scatter_(1, best[:, None], True)
            positive = torch.where((claims > 1)[:, None], keep & positive, positive)
        fg_mask = positive.any(1)
        assigned = positive.float().argmax(1)  # (B, N), valid where fg_mask

        # 5. targets: the match's label and box; score = t * max_u / (max_t + eps) at the match's class
        target_labels = labels.gather(1, assigned)
        target_bboxes = gt_bboxes.gather(1, assigned[..., None].expand(-1, -1, 4))
        align = align * positive
        max_t = align.amax(-1, keepdim=True)
        max_u = (overlaps * positive).amax(-1, keepdim=True)
        norm = (align * max_u / (max_t + EPS)).amax(1)  # (B, N)
        target_scores = torch.zeros(batch, num_points, num_classes, dtype=pd_scores.dtype, device=device)
        target_scores.scatter_(-1, target_labels.clamp(0, num_classes - 1)[..., None], norm[..., None].to(
            pd_scores.dtype))
        target_scores = target_scores * fg_mask[..., None]

        return dict(fg_mask=fg_mask,
                    assigned_gt=torch.where(fg_mask, assigned, torch.full_like(assigned, -1)),
                    target_labels=torch.where(fg_mask, target_labels, torch.full_like(target_labels, num_classes)),
                    target_bboxes=target_bboxes.to(pd_bboxes.dtype) * fg_mask[..., None],
                    target_scores=target_scores)
