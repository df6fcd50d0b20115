"""Letterbox resize for YOLO-style validation and inference (YOLOv5/v8 design, used by LeYOLO).

The image is scaled so its long side fits the target size (aspect ratio kept), then padded to the target size with
the grey value 114, the content centred. ``meta`` records the exact mapping so that predicted boxes go back to the
original image: ``scale_factor = (new_w / w, new_h / h)`` (per axis, from the rounded resized size) and
``pad = (left, top)``; a point ``x`` of the original lands at ``x * sx + left``. :func:`letterbox_to_original` is
the inverse (the YOLO detector's ``predict`` does the same in torch).
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple, Union

import cv2
import numpy as np

from ..registry import TRANSFORMS

PAD_VALUE = 114


def letterbox_params(height: int, width: int, size: Tuple[int, int],
                     scale_up: bool = True) -> Tuple[int, int, int, int]:
    """``(new_h, new_w, top, left)`` for an image of ``height x width`` letterboxed into ``size = (H, W)``."""
    target_h, target_w = size
    ratio = min(target_h / height, target_w / width)
    if not scale_up:
        ratio = min(ratio, 1.0)
    new_h = min(target_h, max(1, int(round(height * ratio))))
    new_w = min(target_w, max(1, int(round(width * ratio))))
    return new_h, new_w, (target_h - new_h) // 2, (target_w - new_w) // 2


def letterbox_to_original(boxes: np.ndarray, meta: Dict[str, Any]) -> np.ndarray:
    """xyxy boxes of the letterboxed image back to original pixels (clipped to ``meta['ori_shape']``)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    sx, sy = meta['scale_factor'][:2]
    left, top = meta['pad'][:2]
    boxes[:, 0::2] = (boxes[:, 0::2] - left) / sx
    boxes[:, 1::2] = (boxes[:, 1::2] - top) / sy
    if 'ori_shape' in meta:
        h, w = meta['ori_shape'][:2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return boxes


@TRANSFORMS.register_module()
class LetterBox:
    """Long side to ``size`` (int or ``(h, w)``), centred on a ``pad_val`` canvas; boxes moved along.

    ``scale_up=False`` never enlarges (only shrinks). ``interpolation`` is a cv2 flag (bilinear by default).
    Sets ``meta['img_shape']``, ``meta['scale_factor']`` (sx, sy), ``meta['pad']`` (left, top) and keeps (or sets)
    ``meta['ori_shape']``.
    """

    def __init__(self, size: Union[int, Sequence[int]] = 640, pad_val: int = PAD_VALUE, scale_up: bool = True,
                 interpolation: int = cv2.INTER_LINEAR) -> None:
        size = (int(size), int(size)) if isinstance(size, (int, float)) else tuple(int(s) for s in size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f'size must be an int or (height, width) >= 1, got {size}')
        self.size, self.pad_val, self.scale_up, self.interpolation = size, int(pad_val), scale_up, interpolation

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        img = np.asarray(sample['img'])
        if img.ndim != 3:
            raise ValueError(f"{sample.get('meta', {}).get('file')}: LetterBox needs an HxWxC image, got {img.shape}")
        h, w = img.shape[:2]
        new_h, new_w, top, left = letterbox_params(h, w, self.size, self.scale_up)
        if (new_h, new_w) != (h, w):
            img = cv2.resize(img, (new_w, new_h), interpolation=self.interpolation)
        bottom, right = self.size[0] - new_h - top, self.size[1] - new_w - left
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                 value=(self.pad_val,) * img.shape[2])
        sx, sy = new_w / w, new_h / h
        sample['img'] = img
        if 'gt_bboxes' in sample:
            boxes = np.asarray(sample['gt_bboxes'], np.float32).reshape(-1, 4).copy()
            boxes[:, 0::2] = boxes[:, 0::2] * sx + left
            boxes[:, 1::2] = boxes[:, 1::2] * sy + top
            sample['gt_bboxes'] = boxes
        meta = sample.setdefault('meta', {})
        meta.setdefault('ori_shape', (h, w))
        meta.update(img_shape=tuple(self.size), scale_factor=(sx, sy), pad=(left, top))
        return sample

    def __repr__(self) -> str:
        return f'LetterBox(size={self.size}, pad_val={self.pad_val}, scale_up={self.scale_up})'
