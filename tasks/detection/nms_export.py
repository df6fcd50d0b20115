"""Detectors with decoding and class-wise NMS inside the graph (``tools/export.py --with-nms``).

One ONNX file a user runs with onnxruntime alone: the normalised network input in, ``boxes`` (``max_det x 4``,
xyxy pixels of the network input, clipped to it), ``scores`` (``max_det``), ``labels`` (``max_det`` int64, -1 on
padding) and ``num_dets`` (a 1-element int64) out, best first, padded with zeros. ``with_nms(detector, ...)``
picks the wrapper by the detector's type: ``DetectorWithNMS`` here for the SSD ``Detector``,
``tasks.detection.yolo.nms_export.YOLODetectorWithNMS`` for ``YOLODetector``; both end in the same selection
(``select_classwise`` and ``pad_detections``).

``DetectorWithNMS`` computes what ``SSDPostProcessor`` computes (SSD, Liu et al., 2016, section 3 "Inference
time"): softmax, decoding against the default boxes (constants of the export size), per class the ``topk`` best
anchors, class-wise NMS, the scores above ``score_thr``, the ``max_det`` best.

Class-wise NMS is written in its coordinate-offset form (``torchvision.ops.nms`` on boxes shifted apart per class,
on a 2D grid of cells so that coordinates stay small), the form ``batched_nms`` itself uses when tracing: a filter
before ``batched_nms`` makes the box count data-dependent and ``batched_nms`` branches on it, which the
torch.export-based exporter cannot trace (issue 10), while a boolean mask before ``nms`` called directly exports
with both exporters. So both wrappers drop the candidates under the score threshold before NMS by default, as the
eager post-processors do (``threshold_first=False`` keeps a fixed candidate count and thresholds after NMS: the
same result, since NMS visits boxes best first and a box only suppresses lower-scored ones, but NMS then runs over
every candidate, 27,300 for SSDLite320 with 91 classes).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms


def classwise_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_thr: float,
                  num_labels: int, frame: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Indices kept by NMS within each label, best first: one ``torchvision.ops.nms`` call on boxes shifted apart
    per label (what ``batched_nms`` computes). Each label gets its own cell of a 2D grid of ``span x span`` cells,
    ``span`` the coordinate range + 1 of ``frame`` (default ``boxes``; a non-empty superset of them when ``boxes``
    may be empty), computed in the graph since unclipped boxes may be negative, so boxes of different labels never
    overlap; a grid rather than torchvision's one long row keeps coordinates small (about sqrt(K) spans instead of
    K), so float32 IoUs stay within ~1e-5 of the per-label ones."""
    if num_labels <= 1:
        return nms(boxes, scores, iou_thr)
    frame = boxes if frame is None else frame
    cols = int(math.ceil(math.sqrt(num_labels)))
    low = frame.min()
    span = frame.max() - low + 1.0
    dx = (labels % cols).to(boxes.dtype) * span
    dy = torch.div(labels, cols, rounding_mode='floor').to(boxes.dtype) * span
    return nms(boxes - low + torch.stack([dx, dy, dx, dy], 1), scores, iou_thr)


def select_classwise(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_thr: float,
                     score_thr: float, max_det: int, num_labels: int, threshold_first: bool = False) -> torch.Tensor:
    """Indices of the ``max_det`` best candidates that survive class-wise NMS and score above ``score_thr``.

    By default the threshold is applied after NMS (exact, see the module docstring): the candidate count stays
    fixed. ``threshold_first`` drops the candidates under the threshold before NMS (a boolean mask: a
    data-dependent count, which both exporters take with ``torchvision.ops.nms`` called directly, not through
    ``batched_nms``); the same result, with NMS over fewer boxes."""
    if threshold_first:
        above = torch.nonzero(scores > score_thr).flatten()
        kept = classwise_nms(boxes[above], scores[above], labels[above], iou_thr, num_labels, frame=boxes)
        return above[kept][:max_det]
    kept = classwise_nms(boxes, scores, labels, iou_thr, num_labels)
    return kept[scores[kept] > score_thr][:max_det]


def pad_detections(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                   max_det: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Up to ``max_det`` detections -> ``(boxes (max_det, 4), scores (max_det,), labels (max_det,), num_dets (1,))``,
    zero-padded, labels -1 on padding."""
    boxes_out = torch.cat([boxes, torch.zeros(max_det, 4, dtype=boxes.dtype)])[:max_det]
    scores_out = torch.cat([scores, torch.zeros(max_det, dtype=scores.dtype)])[:max_det]
    labels_out = torch.cat([labels, torch.full((max_det,), -1, dtype=labels.dtype)])[:max_det]
    num_dets = (labels >= 0).sum().reshape(1).to(torch.int64)  # traced as a computation, not a constant
    return boxes_out, scores_out, labels_out, num_dets


class DetectorWithNMS(nn.Module):
    """``forward(x) -> (boxes, scores, labels, num_dets)`` for one image of the export size (batch 1)."""

    def __init__(self, detector: nn.Module, input_shape: Tuple[int, int], max_det: int = 100,
                 threshold_first: bool = True) -> None:
        super().__init__()
        for needed in ('anchor_generator', 'box_coder', 'post_processor', 'extract'):
            if not hasattr(detector, needed):
                raise TypeError(f'--with-nms needs an SSD-style Detector (with {needed}); '
                                f'{type(detector).__name__} has none')
        if max_det < 1:
            raise ValueError(f'max_det must be >= 1, got {max_det}')
        self.detector = detector.eval()
        self.max_det = int(max_det)
        self.height, self.width = int(input_shape[0]), int(input_shape[1])
        post = detector.post_processor
        self.score_thr, self.topk, self.iou_thr = post.score_thr, post.topk, post.nms_iou_thr
        self.max_det = min(self.max_det, post.max_per_img)
        self.threshold_first = bool(threshold_first)
        with torch.no_grad():
            example = torch.zeros(1, 3, self.height, self.width)
            anchors = detector.anchors(detector.extract(example), example)
        self.register_buffer('anchors', anchors, persistent=False)
        self.num_labels = int(detector.num_classes if detector.label_map is None else (detector.label_map >= 0).sum())
        label_map = detector.label_map
        if label_map is not None:
            self.register_buffer('columns', torch.nonzero(label_map >= 0).flatten(), persistent=False)
            self.register_buffer('out_labels', label_map[label_map >= 0], persistent=False)
        else:
            self.columns = self.out_labels = None

    def forward(self, x: torch.Tensor):
        cls_logits, deltas = self.detector._forward(x)
        scores = F.softmax(cls_logits[0], -1)[:, 1:]                       # (N, K)
        if self.columns is not None:
            scores = scores[:, self.columns]
        boxes = self.detector.box_coder.decode(deltas[0], self.anchors)     # (N, 4)
        limit = torch.tensor([self.width, self.height, self.width, self.height], dtype=boxes.dtype)
        boxes = torch.minimum(boxes.clamp(min=0), limit)
        k = min(self.topk, scores.shape[0])
        top_scores, top_idx = scores.topk(k, dim=0)                         # (k, K): per class, best first
        top_scores, top_idx = top_scores.t().reshape(-1), top_idx.t().reshape(-1)
        labels = torch.arange(scores.shape[1]).repeat_interleave(k)
        cand = boxes[top_idx]
        kept = select_classwise(cand, top_scores, labels, self.iou_thr, self.score_thr, self.max_det,
                                self.num_labels, self.threshold_first)
        out_labels = labels[kept] if self.out_labels is None else self.out_labels[labels[kept]]
        return pad_detections(cand[kept], top_scores[kept], out_labels, self.max_det)


def with_nms(detector: nn.Module, input_shape: Tuple[int, int], max_det: int = 100) -> nn.Module:
    """The NMS-in-graph wrapper for ``detector``'s type: ``YOLODetectorWithNMS`` for a ``YOLODetector``, else
    ``DetectorWithNMS`` (which names what it misses when ``detector`` is no SSD-style detector)."""
    from .yolo.model import YOLODetector
    if isinstance(detector, YOLODetector):
        from .yolo.nms_export import YOLODetectorWithNMS
        return YOLODetectorWithNMS(detector, input_shape, max_det)
    return DetectorWithNMS(detector, input_shape, max_det)


def unpad(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, num_dets: np.ndarray) -> dict:
    """The graph's padded outputs as a result dict ``{'bboxes', 'scores', 'labels'}``."""
    n = int(np.asarray(num_dets).reshape(-1)[0])
    return dict(bboxes=np.asarray(boxes)[:n], scores=np.asarray(scores)[:n], labels=np.asarray(labels)[:n])


def match_detections(ours: dict, reference: dict, tol: float = 1e-4) -> Tuple[int, int]:
    """``(matched, tied)``: detections of ``reference`` with one in ``ours`` of the same label, score and box
    within ``tol`` (boxes relative to their size, at least ``tol`` pixels), and those without but with one of the
    same label and score (within ``tol``) on another box: among boxes of equal scores (random weights tie to
    1e-7) NMS and the ``max_det`` cut keep either, so such a swap is no difference of the computation."""
    matched = tied = 0
    for box, score, label in zip(reference['bboxes'], reference['scores'], reference['labels']):
        same = (ours['labels'] == label) & (np.abs(ours['scores'] - score) <= tol)
        exact = same & (np.abs(ours['bboxes'] - box).max(1) <= tol * max(1.0, float(np.abs(box).max())))
        matched += bool(exact.any())
        tied += bool(same.any() and not exact.any())
    return matched, tied


__all__: List[str] = ['DetectorWithNMS', 'classwise_nms', 'match_detections', 'pad_detections', 'select_classwise',
                       'unpad', 'with_nms']
