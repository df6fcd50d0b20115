"""Training loss of the YOLO-style anchor-free head: BCE classification, CIoU box and distribution focal loss.

With ``S`` the sum of the assigner's target scores over the batch (at least 1) and ``w`` a positive's summed target
score (issue 14, "exact definitions"):

* ``loss_cls = cls_gain * sum BCE(logits, target_scores) / S`` over all points and classes (the quality-aware
  soft targets of TOOD eq. 10 / Generalized Focal Loss Sec. 3.2, without the focal factor);
* ``loss_box = box_gain * sum_pos w * (1 - CIoU(pred, target)) / S``, boxes in stride units;
* ``loss_dfl = dfl_gain * sum_pos w * mean_sides DFL / S`` with DFL(y) = ``CE(left) (right - y) + CE(right)
  (y - left)`` on the two integer bins around the target distance ``y`` (Generalized Focal Loss eq. 6), ``y``
  clamped to ``[0, reg_max - 1 - 0.01]``;

each then multiplied by the number of images in the batch (times the world size under DDP), so the gradient of the
summed loss matches a sum over images and the published SGD recipe (lr 0.01, batch 64-128) transfers unchanged.
The returned values are therefore ``batch * world_size`` times the "per-image" components of the issue.

Ignored (crowd / difficult) boxes are neither positives nor negatives: they take no part in the assignment, and a
point whose centre falls strictly inside an ignored box and that is not a positive gets no class loss.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import complete_box_iou_loss

from ...registry import TASKS
from .assigner import points_inside_boxes
from .coder import bbox_to_distance, dfl_expectation, distance_to_bbox, make_anchor_points


def distribution_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DFL (Generalized Focal Loss eq. 6): ``logits`` (P, reg_max), ``target`` (P,) in [0, reg_max - 1) -> (P,)."""
    left = target.long()
    right = left + 1
    weight_left = right.to(target.dtype) - target
    weight_right = target - left.to(target.dtype)
    return (F.cross_entropy(logits, left, reduction='none') * weight_left
            + F.cross_entropy(logits, right, reduction='none') * weight_right)


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


@TASKS.register_module()
class YOLOLoss(nn.Module):
    """Loss of a decoupled anchor-free head with DFL box regression (see the module docstring).

    Args:
        num_classes: number of classes K.
        reg_max: bins per box side (16 in YOLOv8 / LeYOLO).
        cls_gain, box_gain, dfl_gain: weights of the three terms (YOLOv8's 0.5 / 7.5 / 1.5).
        assigner: a ``TaskAlignedAssigner`` or its config.
        world_size: multiplier for DDP; ``None`` reads it from ``torch.distributed`` at each call.
    """

    def __init__(self, num_classes: int, reg_max: int = 16, cls_gain: float = 0.5, box_gain: float = 7.5,
                 dfl_gain: float = 1.5,
                 assigner: Union[nn.Module, dict] = dict(type='TaskAlignedAssigner', topk=10, alpha=0.5, beta=6.0),
                 world_size: Optional[int] = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if reg_max < 2:
            raise ValueError(f'reg_max must be >= 2, got {reg_max}')
        self.num_classes = int(num_classes)
        self.reg_max = int(reg_max)
        self.cls_gain, self.box_gain, self.dfl_gain = float(cls_gain), float(box_gain), float(dfl_gain)
        self.assigner = TASKS.build(assigner) if isinstance(assigner, dict) else assigner
        self.world_size = world_size

    def _flatten(self, feats: Sequence[torch.Tensor]):
        """Head maps -> box logits (B, N, 4, reg_max) and class logits (B, N, K), level order, row-major."""
        expected = 4 * self.reg_max + self.num_classes
        box, cls = [], []
        for level, f in enumerate(feats):
            if f.dim() != 4 or f.shape[1] != expected:
                raise ValueError(f'head map {level} must be (B, 4*reg_max + num_classes = {expected}, H, W), '
                                 f'got {tuple(f.shape)}')
            b = f.shape[0]
            flat = f.flatten(2).transpose(1, 2)  # (B, HW, C)
            box.append(flat[..., :4 * self.reg_max].reshape(b, -1, 4, self.reg_max))
            cls.append(flat[..., 4 * self.reg_max:])
        return torch.cat(box, 1), torch.cat(cls, 1)

    @staticmethod
    def _pad(gt_bboxes: List[torch.Tensor], gt_labels: List[torch.Tensor], gt_ignore: List[torch.Tensor],
             device: torch.device, dtype: torch.dtype):
        """Per-image lists -> (B, M, 4) boxes, (B, M, 1) labels, (B, M, 1) valid mask, (B, M, 1) ignore mask."""
        batch = len(gt_bboxes)
        num = max([len(b) for b in gt_bboxes] + [0])
        boxes = torch.zeros(batch, num, 4, device=device, dtype=dtype)
        labels = torch.zeros(batch, num, 1, device=device, dtype=torch.long)
        valid = torch.zeros(batch, num, 1, device=device, dtype=torch.bool)
        ignore = torch.zeros(batch, num, 1, device=device, dtype=torch.bool)
        for i, (b, lab, ign) in enumerate(zip(gt_bboxes, gt_labels, gt_ignore)):
            m = len(b)
            if m:
                boxes[i, :m] = b.to(device, dtype).reshape(m, 4)
                labels[i, :m, 0] = lab.to(device).long().reshape(m)
                ign = ign.to(device).bool().reshape(m)
                valid[i, :m, 0] = ~ign
                ignore[i, :m, 0] = ign
        return boxes, labels, valid, ignore

    def forward(self, feats: Sequence[torch.Tensor], strides: Sequence[int], gt_bboxes: List[torch.Tensor],
                gt_labels: List[torch.Tensor],
                gt_ignore: Optional[List[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        if len(feats) != len(strides):
            raise ValueError(f'need one stride per head map, got {len(feats)} maps and {len(strides)} strides')
        batch = feats[0].shape[0]
        if len(gt_bboxes) != batch or len(gt_labels) != batch:
            raise ValueError(f'need per-image gt_bboxes and gt_labels for {batch} images, got {len(gt_bboxes)} '
                             f'and {len(gt_labels)}')
        if gt_ignore is None:
            gt_ignore = [torch.zeros(len(b), dtype=torch.bool) for b in gt_bboxes]
        box_logits, cls_logits = self._flatten(feats)
        device = cls_logits.device
        points, stride_t = make_anchor_points([f.shape[-2:] for f in feats], strides, device=device,
                                              dtype=torch.float32)
        points_s = points / stride_t  # anchor points in stride units

        # decoded predictions in stride units; pixels (detached) for the assigner
        pred_dist = dfl_expectation(box_logits.float())
        pred_bboxes = distance_to_bbox(points_s, pred_dist)  # (B, N, 4)
        boxes, labels, valid, ignore = self._pad(gt_bboxes, gt_labels, gt_ignore, device, torch.float32)
        assigned = self.assigner(cls_logits.detach().float().sigmoid(), pred_bboxes.detach() * stride_t, points,
                                 labels, boxes, valid)
        fg = assigned['fg_mask']
        target_scores = assigned['target_scores'].float()
        score_sum = target_scores.sum().clamp(min=1.0)

        # class loss; points inside an ignored box that are not positives are left out
        bce = F.binary_cross_entropy_with_logits(cls_logits.float(), target_scores, reduction='none')
        if bool(ignore.any()):
            in_ignored = (points_inside_boxes(points, boxes) & ignore).any(1)  # (B, N)
            bce = bce * (~(in_ignored & ~fg))[..., None]
        loss_cls = bce.sum() / score_sum

        if bool(fg.any()):
            weight = target_scores.sum(-1)[fg]  # (P,)
            target_s = assigned['target_bboxes'].float() / stride_t  # stride units
            loss_box = (complete_box_iou_loss(pred_bboxes[fg], target_s[fg], reduction='none') * weight).sum()
            loss_box = loss_box / score_sum
            target_dist = bbox_to_distance(points_s, target_s, self.reg_max - 1 - 0.01)[fg]  # (P, 4)
            dfl = distribution_focal_loss(box_logits.float()[fg].reshape(-1, self.reg_max), target_dist.reshape(-1))
            loss_dfl = (dfl.reshape(-1, 4).mean(-1) * weight).sum() / score_sum
        else:
            # keep the graph (and DDP's used-parameter bookkeeping) with exact zeros
            loss_box = box_logits.sum() * 0.0 + 0.0  # + 0.0 turns a -0.0 into 0.0
            loss_dfl = loss_box.clone()

        scale = batch * (self.world_size if self.world_size is not None else _world_size())
        # float32 even when the head ran in half precision (AMP scales the loss itself)
        return dict(loss_cls=loss_cls * self.cls_gain * scale, loss_box=loss_box * self.box_gain * scale,
                    loss_dfl=loss_dfl * self.dfl_gain * scale)
