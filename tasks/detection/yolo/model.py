"""YOLO-style anchor-free detector (LeYOLO, Hollard et al., 2024; YOLOv8's head design): backbone + neck + decoupled
DFL head, task-aligned assignment and loss (``YOLOLoss``), sigmoid scores and NMS (``YOLOPostProcessor``).

Modes (DESIGN.md): ``tensor`` gives the head maps, one ``(B, 4 * reg_max + K, H_l, W_l)`` per level (what
``tools/export.py`` exports); ``loss`` gives ``loss_cls`` / ``loss_box`` / ``loss_dfl``; ``predict`` decodes every
anchor point (softmax over the bins, expected distance x stride around the cell centre), keeps the detections and
maps them back to the original image through the letterbox recorded in ``meta`` (``scale_factor``, ``pad``), or by
per-axis scaling from ``meta['img_shape']`` to ``meta['ori_shape']`` when no padding was recorded.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from backbones import BACKBONES
from heads import HEADS
from necks import NECKS
from ...base import ModuleOrCfg, TaskModel, build_part
from ...registry import TASKS
from ..model import Detector, class_metadata
from .coder import dfl_expectation, distance_to_bbox, make_anchor_points
from .postprocess import YOLOPostProcessor


def flatten_head_outputs(feats: Sequence[torch.Tensor], reg_max: int,
                         num_classes: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Head maps -> box logits (B, N, 4, reg_max) and class logits (B, N, K), level order, row-major."""
    box, cls = [], []
    for f in feats:
        flat = f.flatten(2).transpose(1, 2)
        box.append(flat[..., :4 * reg_max].reshape(f.shape[0], -1, 4, reg_max))
        cls.append(flat[..., 4 * reg_max:4 * reg_max + num_classes])
    return torch.cat(box, 1), torch.cat(cls, 1)


def decode_head_outputs(feats: Sequence[torch.Tensor], strides: Sequence[int], reg_max: int,
                        num_classes: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Head maps -> boxes (B, N, 4) xyxy in network-input pixels and sigmoid scores (B, N, K)."""
    box_logits, cls_logits = flatten_head_outputs(feats, reg_max, num_classes)
    points, stride_t = make_anchor_points([f.shape[-2:] for f in feats], strides, device=box_logits.device,
                                          dtype=box_logits.dtype)
    boxes = distance_to_bbox(points, dfl_expectation(box_logits) * stride_t)
    return boxes, cls_logits.sigmoid()


def to_original(boxes: torch.Tensor, meta: dict, input_hw: Sequence[int]) -> torch.Tensor:
    """Boxes of the network input back to the original image: the exact inverse of the letterbox (``pad`` and
    ``scale_factor`` in ``meta``), else a per-axis scale ``ori_shape / img_shape``; clipped to the image."""
    boxes = boxes.clone()
    if 'pad' in meta and 'scale_factor' in meta:
        sx, sy = (float(v) for v in meta['scale_factor'][:2])
        left, top = (float(v) for v in meta['pad'][:2])
        boxes[:, 0::2] = (boxes[:, 0::2] - left) / sx
        boxes[:, 1::2] = (boxes[:, 1::2] - top) / sy
    elif 'ori_shape' in meta:
        img_h, img_w = meta.get('img_shape', input_hw)[:2]
        ori_h, ori_w = meta['ori_shape'][:2]
        boxes[:, 0::2] = boxes[:, 0::2] * (ori_w / img_w)
        boxes[:, 1::2] = boxes[:, 1::2] * (ori_h / img_h)
    h, w = meta.get('ori_shape', meta.get('img_shape', input_hw))[:2]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return boxes


@TASKS.register_module()
class YOLODetector(TaskModel):
    """Anchor-free detector with ``num_classes`` classes (labels 0..K-1, sigmoid scores, no background).

    ``predict`` returns per image ``{'bboxes' (xyxy, original pixels), 'scores', 'labels'}`` as numpy arrays
    (and ``img_id`` when the sample has one). ``classes`` and ``cat_ids`` name the labels and map them to dataset
    category ids (for ``save_result``). The data preprocessor defaults to pixels / 255 (YOLO's input scaling).
    """

    def __init__(self, backbone: ModuleOrCfg, neck: ModuleOrCfg, head: ModuleOrCfg, num_classes: int,
                 loss: ModuleOrCfg = None, post_processor=None, classes: Optional[Sequence[str]] = None,
                 cat_ids: Optional[Sequence[int]] = None, data_preprocessor: ModuleOrCfg = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='DetDataPreprocessor', mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_part(backbone, BACKBONES)
        strides = list(getattr(self.backbone, 'strides'))
        self.neck = build_part(neck, NECKS, in_channels=self.backbone.out_channels, strides=strides)
        if getattr(self.neck, 'strides', None):
            strides = list(self.neck.strides)
        self.head = build_part(head, HEADS, in_channels=self.neck.out_channels, num_classes=num_classes,
                               strides=strides)
        if getattr(self.head, 'num_classes', num_classes) != num_classes:
            raise ValueError(f'head has {self.head.num_classes} classes, the model {num_classes}')
        if len(self.neck.out_channels) != len(strides):
            raise ValueError(f'the neck gives {len(self.neck.out_channels)} maps for {len(strides)} strides')
        self.strides = [int(s) for s in getattr(self.head, 'strides', strides)]
        self.num_classes = int(num_classes)
        self.reg_max = int(getattr(self.head, 'reg_max', 16))
        if loss is None or isinstance(loss, dict):
            cfg = dict(loss or {})
            cfg.setdefault('type', 'YOLOLoss')
            cfg.setdefault('num_classes', num_classes)
            cfg.setdefault('reg_max', self.reg_max)
            loss = TASKS.build(cfg)
        self.loss_fn = loss
        if post_processor is None or isinstance(post_processor, dict):
            cfg = dict(post_processor or {})
            cfg.setdefault('type', 'YOLOPostProcessor')
            post_processor = TASKS.build(cfg)
        self.post_processor: YOLOPostProcessor = post_processor
        self.classes, self.cat_ids = class_metadata(classes, cat_ids, num_classes)
        self.label_map = None  # labels are the head's classes (Detector's helpers read it)

    # --- forward pieces ----------------------------------------------------------------------------------------
    def _forward(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        return self.head(self.neck(self.backbone(inputs)))

    # --- training ----------------------------------------------------------------------------------------------
    _gt = Detector._gt  # ground truth of a sample dict as tensors, checked (one rule for both detectors)

    def loss(self, inputs: torch.Tensor, data_samples: List[dict]) -> Dict[str, torch.Tensor]:
        gts = [self._gt(s, inputs.device) for s in data_samples]  # bad ground truth fails before the network runs
        feats = self._forward(inputs)
        return self.loss_fn(feats, self.strides, [g[0] for g in gts], [g[1] for g in gts], [g[2] for g in gts])

    # --- inference ---------------------------------------------------------------------------------------------
    def predict(self, inputs: torch.Tensor, data_samples: Optional[List[dict]] = None) -> List[dict]:
        feats = self._forward(inputs)
        boxes, scores = decode_head_outputs(feats, self.strides, self.reg_max, self.num_classes)
        results = []
        for i in range(boxes.shape[0]):
            meta = (data_samples[i].get('meta', {}) if data_samples else None) or {}
            det = self.post_processor(boxes[i], scores[i])
            bboxes = to_original(det['bboxes'].float(), meta, inputs.shape[-2:])
            r = dict(bboxes=bboxes.detach().cpu().numpy().astype(np.float32).reshape(-1, 4),
                     scores=det['scores'].detach().cpu().numpy().astype(np.float32),
                     labels=det['labels'].detach().cpu().numpy().astype(np.int64))
            if meta.get('img_id') is not None:
                r['img_id'] = meta['img_id']
            results.append(r)
        return results

    # --- outputs for people and files: the same as the SSD detector's ------------------------------------------
    class_name = Detector.class_name
    visualize = Detector.visualize
    coco_results = Detector.coco_results
    save_result = Detector.save_result
