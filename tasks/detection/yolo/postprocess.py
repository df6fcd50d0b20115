"""From decoded YOLO-style predictions to detections (YOLOv8's non-maximum suppression, as LeYOLO evaluates).

Sigmoid class scores need no background column. With ``multi_label`` every (box, class) pair whose score passes
``score_thr`` is a candidate (what COCO mAP is measured with); otherwise each box keeps its best class only.
At most ``max_nms`` candidates (highest scores) enter class-wise NMS (``torchvision.ops.batched_nms``, IoU
``iou_thr``; ``class_agnostic`` suppresses across classes) and the best ``max_per_img`` are kept. No time limit.
"""
from __future__ import annotations

from typing import Dict

import torch
from torchvision.ops import batched_nms

from ...registry import TASKS


@TASKS.register_module()
class YOLOPostProcessor:
    """``(boxes (N, 4) xyxy, scores (N, K) in [0, 1]) -> {'bboxes' (D, 4), 'scores' (D,), 'labels' (D,)}``."""

    def __init__(self, score_thr: float = 0.001, iou_thr: float = 0.7, max_per_img: int = 300,
                 multi_label: bool = True, class_agnostic: bool = False, max_nms: int = 30000) -> None:
        if max_per_img < 1 or max_nms < 1:
            raise ValueError(f'max_per_img and max_nms must be >= 1, got {max_per_img}, {max_nms}')
        if not 0 <= iou_thr <= 1:
            raise ValueError(f'iou_thr must lie in [0, 1], got {iou_thr}')
        self.score_thr, self.iou_thr, self.max_per_img = float(score_thr), float(iou_thr), int(max_per_img)
        self.multi_label, self.class_agnostic, self.max_nms = bool(multi_label), bool(class_agnostic), int(max_nms)

    def __call__(self, boxes: torch.Tensor, scores: torch.Tensor) -> Dict[str, torch.Tensor]:
        if boxes.dim() != 2 or boxes.shape[-1] != 4 or scores.dim() != 2 or scores.shape[0] != boxes.shape[0]:
            raise ValueError(f'expected boxes (N, 4) and scores (N, K), got {tuple(boxes.shape)} and '
                             f'{tuple(scores.shape)}')
        if self.multi_label:
            index, labels = torch.nonzero(scores > self.score_thr, as_tuple=True)
            cand_scores = scores[index, labels]
        else:
            cand_scores, labels = scores.max(1)
            index = torch.nonzero(cand_scores > self.score_thr, as_tuple=True)[0]
            cand_scores, labels = cand_scores[index], labels[index]
        if cand_scores.numel() > self.max_nms:
            cand_scores, order = cand_scores.topk(self.max_nms)
            index, labels = index[order], labels[order]
        cand_boxes = boxes[index]
        groups = torch.zeros_like(labels) if self.class_agnostic else labels
        # batched_nms separates the classes by shifting each by label x (max coordinate + 1), which assumes
        # coordinates >= 0; decoded boxes may stick out of the image (negative), so translate them first (NMS is
        # translation invariant): otherwise boxes of different classes could suppress each other.
        shifted = cand_boxes.float()
        if shifted.numel():
            shifted = shifted - shifted.min().clamp(max=0)
        keep = batched_nms(shifted, cand_scores.float(), groups, self.iou_thr)[:self.max_per_img]
        return dict(bboxes=cand_boxes[keep], scores=cand_scores[keep], labels=labels[keep])

    def __repr__(self) -> str:
        return (f'YOLOPostProcessor(score_thr={self.score_thr}, iou_thr={self.iou_thr}, max_per_img='
                f'{self.max_per_img}, multi_label={self.multi_label}, class_agnostic={self.class_agnostic})')
