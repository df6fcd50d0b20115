"""SSDLite detector (MobileNetV2 paper, section 6.2; SSD, Liu et al., 2016): backbone + extra layers + separable
prediction head, default boxes, matching, box coding, the SSD loss and post-processing, each a separate part."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from backbones import BACKBONES
from heads import HEADS
from necks import NECKS
from ..base import ModuleOrCfg, SampleListPreprocessor, TaskModel, build_part, stack_images
from ..registry import TASKS
from .anchors import DefaultBoxGenerator
from .box_coder import DeltaXYWHCoder
from .loss import SSDLoss
from .matcher import SSDMatcher
from .postprocess import SSDPostProcessor


def _build(part, default_cls):
    """A config dict (built from ``TASKS``, ``type`` defaulting to ``default_cls``) or an object used as is."""
    if part is None:
        return default_cls()
    if isinstance(part, dict):
        cfg = dict(part)
        cfg.setdefault('type', default_cls.__name__)
        return TASKS.build(cfg)
    return part


@TASKS.register_module()
class DetDataPreprocessor(SampleListPreprocessor):
    """Images -> ``B x 3 x H x W`` float ``(x / 255 - mean / 255) / (std / 255)``; mean/std in 0-255 units.

    uint8 images are divided by 255; float images are taken to be in [0, 1] already (albumentations ``ToFloat``).
    Without ``resize`` the images of a batch must have one size (resize them in the pipeline). With
    ``resize=(h, w)`` each normalised image is resized here with bilinear interpolation (``align_corners=False``,
    no antialiasing) exactly as torchvision's ``GeneralizedRCNNTransform`` does, ``meta['img_shape']`` is set and
    ground-truth boxes are scaled along. Ground truth otherwise stays in the sample dicts.
    """

    def __init__(self, mean: Sequence[float] = (123.675, 116.28, 103.53),
                 std: Sequence[float] = (58.395, 57.12, 57.375), resize: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
            raise ValueError(f'mean and std need 3 values each (std > 0), got {mean}, {std}')
        if resize is not None and (len(resize) != 2 or min(resize) < 1):
            raise ValueError(f'resize must be (height, width), got {resize}')
        self.resize = tuple(int(v) for v in resize) if resize is not None else None
        self.register_buffer('mean', torch.tensor([m / 255.0 for m in mean], dtype=torch.float32).view(3, 1, 1),
                             False)
        self.register_buffer('std', torch.tensor([v / 255.0 for v in std], dtype=torch.float32).view(3, 1, 1), False)

    def _to_tensor(self, sample: dict) -> torch.Tensor:
        im = sample['img']
        if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3:
            raise ValueError(f"{sample.get('meta', {}).get('file')}: expected an HxWx3 RGB array, got "
                             f"{getattr(im, 'shape', type(im).__name__)}")
        x = torch.from_numpy(np.ascontiguousarray(im)).to(self.device).permute(2, 0, 1)
        return x.float() / 255.0 if not x.dtype.is_floating_point else x.float()

    def process(self, samples: List[dict], training: bool) -> dict:
        if self.resize is None:
            stack_images([s['img'] for s in samples], 'detection images')  # same-size check, names the problem
        images, out = [], []
        for s in samples:
            x = (self._to_tensor(s) - self.mean) / self.std
            if self.resize is not None:
                h, w = x.shape[-2:]
                x = F.interpolate(x[None], size=list(self.resize), mode='bilinear', align_corners=False)[0]
                s = dict(s, meta=dict(s.get('meta', {}), img_shape=self.resize))
                s['meta'].setdefault('ori_shape', (h, w))
                if 'gt_bboxes' in s:
                    scale = np.array([self.resize[1] / w, self.resize[0] / h] * 2, np.float32)
                    s['gt_bboxes'] = np.asarray(s['gt_bboxes'], np.float32).reshape(-1, 4) * scale
            images.append(x)
            out.append(s)
        return dict(inputs=torch.stack(images), data_samples=out)


def class_metadata(classes: Optional[Sequence[str]], cat_ids: Optional[Sequence[int]],
                   num_labels: int) -> Tuple[Optional[List[str]], Optional[List[int]]]:
    """The class names and dataset category ids of a detector's output labels, checked: one per label."""
    if classes is not None and len(classes) != num_labels:
        raise ValueError(f'{len(classes)} class names given for {num_labels} output labels')
    if cat_ids is not None and len(cat_ids) != num_labels:
        raise ValueError(f'{len(cat_ids)} category ids given for {num_labels} output labels')
    return (list(classes) if classes is not None else None, list(cat_ids) if cat_ids is not None else None)


@TASKS.register_module()
class Detector(TaskModel):
    """SSD-style single-shot detector; ``num_classes`` foreground classes, labels 0..K-1.

    ``tensor`` mode returns ``(cls_logits (B, N, K+1), deltas (B, N, 4))`` (column 0 of the logits is the
    background); ``predict`` returns per image ``{'bboxes' (xyxy, original image pixels), 'scores', 'labels'}`` as
    numpy arrays. ``label_map`` (length K, optional) renames head classes to output labels, -1 meaning "never
    output": it lets a head trained on torchvision's 91 COCO slots give the 80 contiguous COCO labels.
    """

    def __init__(self, backbone: ModuleOrCfg, neck: ModuleOrCfg, head: ModuleOrCfg, num_classes: int,
                 anchor_generator=None, matcher=None, box_coder=None, loss=None, post_processor=None,
                 classes: Optional[Sequence[str]] = None, cat_ids: Optional[Sequence[int]] = None,
                 label_map: Optional[Sequence[int]] = None, data_preprocessor: ModuleOrCfg = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='DetDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.anchor_generator: DefaultBoxGenerator = _build(anchor_generator, DefaultBoxGenerator)
        self.matcher: SSDMatcher = _build(matcher, SSDMatcher)
        self.box_coder: DeltaXYWHCoder = _build(box_coder, DeltaXYWHCoder)
        self.loss_fn: SSDLoss = _build(loss, SSDLoss)
        self.post_processor: SSDPostProcessor = _build(post_processor, SSDPostProcessor)
        self.backbone = build_part(backbone, BACKBONES)
        self.neck = build_part(neck, NECKS, in_channels=self.backbone.out_channels)
        self.head = build_part(head, HEADS, in_channels=self.neck.out_channels, num_classes=num_classes,
                               num_anchors=self.anchor_generator.num_anchors)
        if len(self.neck.out_channels) != self.anchor_generator.num_levels:
            raise ValueError(f'the neck gives {len(self.neck.out_channels)} maps but the anchor generator has '
                             f'{self.anchor_generator.num_levels} levels')
        if getattr(self.head, 'num_classes', num_classes) != num_classes:
            raise ValueError(f'head has {self.head.num_classes} classes, the model {num_classes}')
        self.num_classes = num_classes
        if label_map is not None:
            label_map = torch.as_tensor(list(label_map), dtype=torch.long)
            if label_map.numel() != num_classes:
                raise ValueError(f'label_map needs one entry per head class ({num_classes}), got {label_map.numel()}')
            outputs = label_map[label_map >= 0]
            if outputs.unique().numel() != outputs.numel():
                raise ValueError('label_map maps two head classes to the same label')
        self.label_map = label_map
        n_out = num_classes if label_map is None else int((label_map >= 0).sum())
        self.classes, self.cat_ids = class_metadata(classes, cat_ids, n_out)

    # --- forward pieces ----------------------------------------------------------------------------------------
    def extract(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        return self.neck(self.backbone(inputs))

    def _forward(self, inputs: torch.Tensor):
        return self.head(self.extract(inputs))

    def anchors(self, features: List[torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        return self.anchor_generator([f.shape[-2:] for f in features], inputs.shape[-2:], inputs.device,
                                     features[0].dtype)

    def _head_and_anchors(self, inputs: torch.Tensor):
        features = self.extract(inputs)
        cls_logits, deltas = self.head(features)
        return cls_logits, deltas, self.anchors(features, inputs)

    # --- training ----------------------------------------------------------------------------------------------
    def _gt(self, sample: dict, device: torch.device):
        boxes = torch.as_tensor(np.asarray(sample.get('gt_bboxes', np.zeros((0, 4))), np.float32).reshape(-1, 4),
                                device=device)
        labels = torch.as_tensor(np.asarray(sample.get('gt_labels', np.zeros(0)), np.int64).reshape(-1), device=device)
        ignore = torch.as_tensor(np.asarray(sample.get('gt_ignore_flags', np.zeros(len(labels), bool)),
                                            bool).reshape(-1), device=device)
        if not (len(boxes) == len(labels) == len(ignore)):
            raise ValueError(f"{sample.get('meta', {}).get('file')}: {len(boxes)} boxes, {len(labels)} labels, "
                             f"{len(ignore)} ignore flags")
        n_out = self.num_classes if self.label_map is None else int((self.label_map >= 0).sum())
        if len(labels) and (labels.min() < 0 or labels.max() >= n_out):
            raise ValueError(f"{sample.get('meta', {}).get('file')}: labels must lie in 0..{n_out - 1}, got "
                             f"{labels.min().item()}..{labels.max().item()}")
        if self.label_map is not None:  # output label -> head class
            inverse = torch.full((n_out,), -1, dtype=torch.long)
            inverse[self.label_map[self.label_map >= 0]] = torch.nonzero(self.label_map >= 0).flatten()
            labels = inverse.to(device)[labels]
        return boxes, labels, ignore

    def loss(self, inputs: torch.Tensor, data_samples: List[dict]) -> Dict[str, torch.Tensor]:
        gts = [self._gt(s, inputs.device) for s in data_samples]  # bad ground truth fails before the network runs
        cls_logits, deltas, anchors = self._head_and_anchors(inputs)
        cls_t, reg_t = self.loss_fn.targets(anchors, [g[0] for g in gts], [g[1] for g in gts], [g[2] for g in gts],
                                            self.matcher, self.box_coder)
        return self.loss_fn(cls_logits, deltas, cls_t, reg_t)

    # --- inference ---------------------------------------------------------------------------------------------
    def predict(self, inputs: torch.Tensor, data_samples: Optional[List[dict]] = None) -> List[dict]:
        cls_logits, deltas, anchors = self._head_and_anchors(inputs)
        metas = [s.get('meta', {}) for s in data_samples] if data_samples else None
        label_map = self.label_map.to(inputs.device) if self.label_map is not None else None
        dets = self.post_processor(cls_logits, deltas, anchors, self.box_coder, inputs.shape[-2:], metas, label_map)
        results = []
        for i, d in enumerate(dets):
            r = {k: v.detach().cpu().numpy() for k, v in d.items()}
            r['bboxes'] = r['bboxes'].astype(np.float32).reshape(-1, 4)
            r['scores'] = r['scores'].astype(np.float32)
            r['labels'] = r['labels'].astype(np.int64)
            if metas is not None and metas[i].get('img_id') is not None:
                r['img_id'] = metas[i]['img_id']
            results.append(r)
        return results

    def class_name(self, label: int) -> str:
        return self.classes[label] if self.classes is not None and 0 <= label < len(self.classes) else str(label)

    def visualize(self, image: np.ndarray, result: dict, score_thr: float = 0.3) -> np.ndarray:
        """Boxes with class names and scores (those with score >= ``score_thr``) drawn on a copy of ``image``, line
        width and text scaled with the image, and a caption "N of M boxes (score >= thr)" at the bottom-left."""
        from data.visualization.boxes import draw_detections
        return draw_detections(image, result, score_thr, self.classes)[0]

    def coco_results(self, result: dict, image_id) -> List[dict]:
        """The detections of one image as COCO result dicts (``bbox`` ``[x, y, w, h]``; ``category_id`` the
        dataset's id when the model knows ``cat_ids``, else the label), with ``label`` and class ``name`` beside."""
        from data.evaluators.coco_metric import xyxy_to_coco_results
        n_out = self.num_classes if self.label_map is None else int((self.label_map >= 0).sum())
        labels = np.asarray(result['labels'], np.int64).reshape(-1)
        records = xyxy_to_coco_results(image_id, result['bboxes'], result['scores'], labels,
                                       self.cat_ids if self.cat_ids is not None else list(range(n_out)))
        for record, label in zip(records, labels):
            record.update(label=int(label), name=self.class_name(int(label)))
        return records

    def save_result(self, result: dict, stem: str) -> List[str]:
        """COCO results json ``stem + '.json'``: ``[{image_id, category_id, bbox: [x, y, w, h], score}]``.

        ``category_id`` is the dataset's category id when the model knows ``cat_ids``, else the label.
        """
        records = self.coco_results(result, result.get('img_id', os.path.basename(stem)))
        from data.io import check_writable
        path = check_writable(stem + '.json')
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(records, f)
        return [path]
