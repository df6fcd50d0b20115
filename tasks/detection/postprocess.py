"""From head outputs to detections (SSD, Liu et al., 2016, section 3: "Inference time").

Softmax over the class logits, decode the deltas against the default boxes, clip to the network input, keep per
class the scores above ``score_thr`` among the ``topk`` best, run class-wise NMS (``torchvision.ops.batched_nms``)
and keep the ``max_per_img`` best; finally scale the boxes from the network input (``meta['img_shape']``) back to
the original image (``meta['ori_shape']``).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms

from ..registry import TASKS
from .box_coder import DeltaXYWHCoder


@TASKS.register_module()
class SSDPostProcessor:
    """Per-image detections ``{'bboxes', 'scores', 'labels'}``, labels contiguous 0..K-1.

    Defaults follow torchvision's SSDLite320 (score 0.001, top 300 per class, NMS IoU 0.55, 300 detections).
    """

    def __init__(self, score_thr: float = 0.001, topk: int = 300, nms_iou_thr: float = 0.55,
                 max_per_img: int = 300) -> None:
        if topk < 1 or max_per_img < 1:
            raise ValueError('topk and max_per_img must be >= 1')
        self.score_thr, self.topk, self.nms_iou_thr, self.max_per_img = score_thr, topk, nms_iou_thr, max_per_img

    def __call__(self, cls_logits: torch.Tensor, deltas: torch.Tensor, anchors: torch.Tensor,
                 coder: DeltaXYWHCoder, input_shape: Sequence[int],
                 metas: Optional[Sequence[dict]] = None, label_map: Optional[torch.Tensor] = None) -> List[dict]:
        """``label_map`` (K,) maps head class ``c`` (column ``c + 1``) to an output label, -1 = never output."""
        scores = F.softmax(cls_logits, -1)[..., 1:]           # (B, N, K)
        boxes = coder.decode(deltas, anchors)                  # (B, N, 4)
        h, w = int(input_shape[0]), int(input_shape[1])
        results = []
        for i in range(scores.shape[0]):
            meta = (metas[i] if metas is not None else None) or {}
            img_h, img_w = meta.get('img_shape', (h, w))[:2]
            b = boxes[i]
            b = torch.stack([b[:, 0].clamp(0, img_w), b[:, 1].clamp(0, img_h), b[:, 2].clamp(0, img_w),
                             b[:, 3].clamp(0, img_h)], -1)
            s = scores[i]
            if label_map is not None:
                s = s[:, label_map >= 0]
            k = min(self.topk, s.shape[0])
            top_scores, top_idx = s.topk(k, dim=0)             # (k, K): per class, best first
            top_scores, top_idx = top_scores.t().reshape(-1), top_idx.t().reshape(-1)
            labels = torch.arange(s.shape[1], device=s.device).repeat_interleave(k)
            keep = top_scores > self.score_thr
            top_scores, labels, cand = top_scores[keep], labels[keep], b[top_idx[keep]]
            kept = batched_nms(cand, top_scores, labels, self.nms_iou_thr)[:self.max_per_img]
            out_boxes, out_scores, out_labels = cand[kept], top_scores[kept], labels[kept]
            if label_map is not None:
                out_labels = label_map[label_map >= 0][out_labels]
            results.append(dict(bboxes=self.to_original(out_boxes, meta, (h, w)), scores=out_scores,
                                labels=out_labels))
        return results

    @staticmethod
    def to_original(boxes: torch.Tensor, meta: dict, input_shape: Sequence[int]) -> torch.Tensor:
        """Boxes of the network input -> the original image: clipped to ``meta['img_shape']`` (default
        ``input_shape``), then scaled per axis by ``ori_shape / img_shape`` when ``meta`` has ``ori_shape``.
        (``__call__`` clips before NMS already; clipping again is exact.)"""
        img_h, img_w = meta.get('img_shape', input_shape)[:2]
        boxes = torch.stack([boxes[:, 0].clamp(0, img_w), boxes[:, 1].clamp(0, img_h), boxes[:, 2].clamp(0, img_w),
                             boxes[:, 3].clamp(0, img_h)], -1)
        if 'ori_shape' in meta:
            ori_h, ori_w = meta['ori_shape'][:2]
            ratio = (torch.tensor([ori_w, ori_h], dtype=torch.float32, device=boxes.device)
                     / torch.tensor([img_w, img_h], dtype=torch.float32, device=boxes.device))
            boxes = boxes * ratio.repeat(2)
        return boxes
