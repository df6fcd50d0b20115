"""The YOLO-style detector with DFL decoding, sigmoid scores and class-wise NMS inside the graph
(``tools/export.py --with-nms``; outputs as ``tasks.detection.nms_export`` describes).

It computes what ``YOLODetector.predict`` computes for an input without ``meta`` (boxes in the network input's
pixels, clipped to it): the head maps decoded by ``decode_head_outputs`` (softmax over the ``reg_max`` bins, their
expectation, anchor point -/+ distance x stride, Generalized Focal Loss section 3.3; sigmoid class scores), then
``YOLOPostProcessor``'s selection: with ``multi_label`` every (box, class) pair is a candidate, otherwise each box's
best class; at most ``max_nms`` candidates, best first; class-wise NMS (or class-agnostic) at ``iou_thr``; the
scores above ``score_thr``; the ``max_det`` best. Boxes are clipped after NMS, as ``predict`` clips them.

Candidates of a fixed count first, and why the result is the same: the graph takes the ``k = min(max_nms, number
of pairs)`` best pairs by score (a ``TopK`` of fixed size) and then those above ``score_thr``, where the eager path
takes the pairs above ``score_thr`` and then caps them at their ``max_nms`` best. The eager candidates are the best
``min(max_nms, c)`` of the ``c`` pairs above the threshold, and the graph's ``k`` best pairs hold exactly those
(followed, when ``c < k``, by pairs at or under the threshold, which the threshold drops): the same set, exact up to
the order of equal scores (at the ``max_nms`` cut, as in the eager ``topk``, and inside NMS).

Then class-wise NMS in its coordinate-offset form (``select_classwise``, ``torchvision.ops.nms`` called directly):
by default (``threshold_first``) on the candidates above the threshold only, a boolean mask of data-dependent
count, which both exporters take (the issue-10 failure of a filter before NMS came from ``batched_nms`` branching
on the box count, not from the mask) and which keeps NMS to the boxes the eager path runs it on: measured at 320
x 320, about 3x faster in onnxruntime than NMS over all 30,000 candidates. ``threshold_first=False`` is the SSD
form (threshold after NMS, every shape fixed; exact, see ``tasks.detection.nms_export``).

At the published 640 x 640 with 80 classes that is 672,000 pairs and a ``TopK`` of 30,000; at 320, 168,000 pairs.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..nms_export import pad_detections, select_classwise
from .model import YOLODetector, decode_head_outputs


class YOLODetectorWithNMS(nn.Module):
    """``forward(x) -> (boxes, scores, labels, num_dets)`` for one image of the export size (batch 1)."""

    def __init__(self, detector: YOLODetector, input_shape: Tuple[int, int], max_det: int = 100,
                 threshold_first: bool = True) -> None:
        super().__init__()
        if not isinstance(detector, YOLODetector):
            raise TypeError(f'YOLODetectorWithNMS needs a YOLODetector, got {type(detector).__name__}')
        if max_det < 1:
            raise ValueError(f'max_det must be >= 1, got {max_det}')
        self.detector = detector.eval()
        self.height, self.width = int(input_shape[0]), int(input_shape[1])
        post = detector.post_processor
        self.score_thr, self.iou_thr = post.score_thr, post.iou_thr
        self.multi_label, self.class_agnostic = post.multi_label, post.class_agnostic
        self.max_det = min(int(max_det), post.max_per_img)
        self.num_classes = detector.num_classes
        self.threshold_first = bool(threshold_first)
        with torch.no_grad():
            feats = detector._forward(torch.zeros(1, 3, self.height, self.width))
        self.num_points = sum(int(f.shape[-2]) * int(f.shape[-1]) for f in feats)
        pairs = self.num_points * self.num_classes if self.multi_label else self.num_points
        self.num_candidates = min(post.max_nms, pairs)

    def forward(self, x: torch.Tensor):
        det = self.detector
        boxes, scores = decode_head_outputs(det._forward(x), det.strides, det.reg_max, det.num_classes)
        boxes, scores = boxes[0], scores[0]                                   # (N, 4) xyxy px, (N, K)
        if self.multi_label:  # pair index = point * K + class (the eager path's nonzero order)
            cand_scores, pair = scores.reshape(-1).topk(self.num_candidates)
            point = torch.div(pair, self.num_classes, rounding_mode='floor')
            labels = pair - point * self.num_classes
        else:
            best, best_label = scores.max(1)
            cand_scores, point = best.topk(self.num_candidates)
            labels = best_label[point]
        cand = boxes[point]
        groups = torch.zeros_like(labels) if self.class_agnostic else labels
        kept = select_classwise(cand, cand_scores, groups, self.iou_thr, self.score_thr, self.max_det,
                                1 if self.class_agnostic else self.num_classes, self.threshold_first)
        limit = torch.tensor([self.width, self.height, self.width, self.height], dtype=cand.dtype)
        out_boxes = torch.minimum(cand[kept].clamp(min=0), limit)
        return pad_detections(out_boxes, cand_scores[kept], labels[kept], self.max_det)


__all__ = ['YOLODetectorWithNMS']
