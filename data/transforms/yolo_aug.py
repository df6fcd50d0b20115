"""Training augmentation of the YOLO-style detectors (YOLOv5/v8 recipe as LeYOLO trains it, issue 14).

Registered transforms acting on sample dicts and carrying ``gt_bboxes`` / ``gt_labels`` / ``gt_ignore_flags``:

* :class:`Mosaic`: four images in a 2x2 mosaic on a ``2s x 2s`` canvas filled with 114 (YOLOv4, Bochkovskiy et
  al., 2020, Sec. 3.3 "Mosaic"): each image is resized so its long side is ``s`` and placed with one corner at a
  random centre in ``[0.5 s, 1.5 s]^2`` (top-left image by its bottom-right corner, and so on); boxes are shifted
  with their image and clipped to the canvas. The three extra samples come from the dataset
  (``num_extra_samples``, honoured by :class:`~data.datasets.detection_base.DetectionDataset`), in
  ``sample['mix_results']``. Switched off (``enabled = False``, e.g. by ``CloseMosaicHook``) or not drawn
  (``p``), it only resizes the image to long side ``s``, so objects keep the same scale either way.
* :class:`RandomAffine`: random scale (0.5-1.5), translation (+-0.1 of the output) and optional rotation / shear
  about the image centre, output ``output_size`` (``s`` after a ``2s`` mosaic: a random ``s x s`` view of it), fill
  114; then the YOLO box filter: a box is kept when both sides are > ``min_side`` px, its area is > ``min_area_ratio``
  of its pre-affine area times the scale squared (so boxes mostly cut off by the border go), and its aspect ratio is
  < ``max_aspect``.
* :class:`HSVJitter`: multiplicative hue / saturation / value gains drawn in ``1 +- (0.015, 0.7, 0.4)``, applied
  with look-up tables on OpenCV's 8-bit HSV (hue wraps modulo 180).

Horizontal flip (0.5) and the rare blur / median blur / gray / CLAHE (0.01 each) are albumentations transforms run
through :class:`~data.transforms.albu.Albumentations`: :func:`yolo_train_pipeline` lists the whole pipeline.
The random parameters of the transforms here are drawn from NumPy's global generator, which mmengine seeds per
worker, so that a seeded run is repeatable. We use our own mosaic rather than ``albumentations.Mosaic``: the latter
fits every image to a fixed cell, while the YOLO mosaic keeps each image at its own scale around a random centre.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..registry import TRANSFORMS
from .detection import keep_boxes

PAD_VALUE = 114


def _boxes(sample: Dict[str, Any]) -> np.ndarray:
    return np.asarray(sample.get('gt_bboxes', np.zeros((0, 4))), np.float32).reshape(-1, 4)


def _fields(sample: Dict[str, Any], n: int) -> Tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(sample.get('gt_labels', np.zeros(n, np.int64)), np.int64).reshape(-1)
    flags = np.asarray(sample.get('gt_ignore_flags', np.zeros(n, bool)), bool).reshape(-1)
    return labels, flags


def _check_image(sample: Dict[str, Any], name: str) -> np.ndarray:
    img = sample.get('img')
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        desc = f'{img.dtype} {img.shape}' if isinstance(img, np.ndarray) else type(img).__name__
        raise ValueError(f"{sample.get('meta', {}).get('file')}: {name} needs an HxWx3 uint8 image, got {desc}")
    return img


def _pair(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """``s`` or ``(h, w)`` -> ``(h, w)``."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _resize_long_side(img: np.ndarray, boxes: np.ndarray, long_side: int) -> Tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    ratio = long_side / max(h, w)
    if ratio == 1:
        return img, boxes
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    interp = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    scale = np.array([size[0] / w, size[1] / h] * 2, np.float32)
    return cv2.resize(img, size, interpolation=interp), boxes * scale


@TRANSFORMS.register_module()
class Mosaic:
    """2x2 mosaic of the sample and ``sample['mix_results']`` (three more) on a ``2s x 2s`` canvas.

    Args:
        img_scale: ``s``: every image is resized to long side ``s``; the canvas is ``2s x 2s``.
        center_ratio_range: the mosaic centre is drawn uniformly in this range times ``s``, per axis.
        pad_val: canvas fill.
        p: probability of a mosaic (otherwise only the resize).
    """

    def __init__(self, img_scale: int = 640, center_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 pad_val: int = PAD_VALUE, p: float = 1.0) -> None:
        if img_scale < 1:
            raise ValueError(f'img_scale must be positive, got {img_scale}')
        if not 0 <= center_ratio_range[0] <= center_ratio_range[1] <= 2:
            raise ValueError(f'center_ratio_range must lie in [0, 2], got {center_ratio_range}')
        self.img_scale = int(img_scale)
        self.center_ratio_range = tuple(center_ratio_range)
        self.pad_val = pad_val
        self.p = p
        self.enabled = True

    @property
    def num_extra_samples(self) -> int:
        """Samples the dataset must hand over in ``mix_results``: 3, or 0 while switched off."""
        return 3 if self.enabled and self.p > 0 else 0

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        mixes = sample.pop('mix_results', None)
        img = _check_image(sample, 'Mosaic')
        if not self.enabled or np.random.rand() >= self.p:
            img, boxes = _resize_long_side(img, _boxes(sample), self.img_scale)
            sample['img'] = img
            if 'gt_bboxes' in sample:
                sample['gt_bboxes'] = boxes.astype(np.float32)
            sample.setdefault('meta', {})['img_shape'] = img.shape[:2]
            return sample
        if mixes is None or len(mixes) != 3:
            got = 'none' if mixes is None else len(mixes)
            raise ValueError(f"{sample.get('meta', {}).get('file')}: Mosaic needs 3 extra samples in "
                             f"sample['mix_results'] (a DetectionDataset hands them over), got {got}")
        s = self.img_scale
        canvas = np.full((2 * s, 2 * s, 3), self.pad_val, np.uint8)
        xc, yc = (int(np.random.uniform(*self.center_ratio_range) * s) for _ in range(2))
        all_boxes, all_labels, all_flags = [], [], []
        for quadrant, part in enumerate([sample] + list(mixes)):
            part_img, boxes = _resize_long_side(_check_image(part, 'Mosaic'), _boxes(part), s)
            labels, flags = _fields(part, len(boxes))
            h, w = part_img.shape[:2]
            # the image's top-left corner on the canvas: the quadrant's corner sits at the centre
            x0 = xc - w if quadrant in (0, 2) else xc
            y0 = yc - h if quadrant in (0, 1) else yc
            cx1, cy1, cx2, cy2 = max(x0, 0), max(y0, 0), min(x0 + w, 2 * s), min(y0 + h, 2 * s)
            if cx2 > cx1 and cy2 > cy1:
                canvas[cy1:cy2, cx1:cx2] = part_img[cy1 - y0:cy2 - y0, cx1 - x0:cx2 - x0]
            all_boxes.append(boxes + np.array([x0, y0, x0, y0], np.float32))
            all_labels.append(labels)
            all_flags.append(flags)
        boxes = np.concatenate(all_boxes).clip(0, 2 * s)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        sample['img'] = canvas
        sample['gt_bboxes'] = boxes[keep].astype(np.float32)
        sample['gt_labels'] = np.concatenate(all_labels)[keep]
        sample['gt_ignore_flags'] = np.concatenate(all_flags)[keep]
        sample.setdefault('meta', {})['img_shape'] = canvas.shape[:2]
        return sample

    def __repr__(self) -> str:
        return f'Mosaic(img_scale={self.img_scale}, p={self.p}, enabled={self.enabled})'


def filter_boxes(before: np.ndarray, after: np.ndarray, scale: float, min_side: float = 2.0,
                 min_area_ratio: float = 0.1, max_aspect: float = 100.0) -> np.ndarray:
    """The YOLO box filter after a geometric transform -> keep mask.

    ``before`` (N, 4) are the boxes before it, ``after`` (N, 4) the transformed and clipped boxes, ``scale`` the
    transform's scale: a box is kept when both sides are > ``min_side``, its area is > ``min_area_ratio`` times its
    area before (times ``scale ** 2``) and ``max(w / h, h / w) < max_aspect``.
    """
    eps = 1e-16
    w0, h0 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w, h = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    aspect = np.maximum(w / (h + eps), h / (w + eps))
    return ((w > min_side) & (h > min_side) & (w * h / (w0 * h0 * scale ** 2 + eps) > min_area_ratio)
            & (aspect < max_aspect))


@TRANSFORMS.register_module()
class RandomAffine:
    """Random scale / translation (and optional rotation, shear) about the image centre, then the box filter.

    The output centre is the input centre moved by ``U(-translate, translate) x`` the output size; ``scale`` is
    drawn uniformly in its range, ``degrees`` and ``shear`` (in degrees) uniformly in ``+-`` their value. Boxes are
    the extent of their transformed corners, clipped to the output, then filtered by :func:`filter_boxes`.
    ``output_size`` (``s`` or ``(h, w)``) defaults to the input size. Switched off (``enabled = False``), it only
    centres the image in the output (scale 1, no translation).
    """

    def __init__(self, scale: Tuple[float, float] = (0.5, 1.5), translate: float = 0.1, degrees: float = 0.0,
                 shear: float = 0.0, output_size: Optional[Union[int, Sequence[int]]] = None,
                 pad_val: int = PAD_VALUE, min_side: float = 2.0, min_area_ratio: float = 0.1,
                 max_aspect: float = 100.0) -> None:
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f'scale must be a positive (low, high) range, got {scale}')
        if not 0 <= translate < 0.5:
            raise ValueError(f'translate must lie in [0, 0.5), got {translate}')
        self.scale = tuple(scale)
        self.translate, self.degrees, self.shear = float(translate), float(degrees), float(shear)
        self.output_size = None if output_size is None else _pair(output_size)
        self.pad_val = pad_val
        self.min_side, self.min_area_ratio, self.max_aspect = min_side, min_area_ratio, max_aspect
        self.enabled = True

    def draw_matrix(self, in_hw: Tuple[int, int], out_hw: Tuple[int, int]) -> Tuple[np.ndarray, float]:
        """A random 3x3 affine matrix from input to output pixels, and its scale."""
        h, w = in_hw
        oh, ow = out_hw
        centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
        if self.enabled:
            scale = np.random.uniform(*self.scale)
            angle = np.random.uniform(-self.degrees, self.degrees)
            shear_x, shear_y = np.tan(np.deg2rad(np.random.uniform(-self.shear, self.shear, 2)))
            tx, ty = np.random.uniform(-self.translate, self.translate, 2)
        else:
            scale, angle, shear_x, shear_y, tx, ty = 1.0, 0.0, 0.0, 0.0, 0.0, 0.0
        rotate = np.eye(3)
        rotate[:2] = cv2.getRotationMatrix2D((0, 0), angle, scale)
        shear = np.array([[1, shear_x, 0], [shear_y, 1, 0], [0, 0, 1]], np.float64)
        move = np.array([[1, 0, (0.5 + tx) * ow], [0, 1, (0.5 + ty) * oh], [0, 0, 1]], np.float64)
        return move @ shear @ rotate @ centre, float(scale)

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        img = _check_image(sample, 'RandomAffine')
        out_h, out_w = self.output_size or img.shape[:2]
        matrix, scale = self.draw_matrix(img.shape[:2], (out_h, out_w))
        sample['img'] = cv2.warpAffine(img, matrix[:2], (out_w, out_h), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=(self.pad_val,) * 3)
        sample.setdefault('meta', {})['img_shape'] = (out_h, out_w)
        if 'gt_bboxes' not in sample:
            return sample
        boxes = _boxes(sample)
        corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)  # tl, tr, br, bl
        moved = corners @ matrix[:2, :2].T.astype(np.float32) + matrix[:2, 2].astype(np.float32)
        new = np.concatenate([moved.min(1), moved.max(1)], 1).reshape(-1, 4)
        new[:, 0::2] = new[:, 0::2].clip(0, out_w)
        new[:, 1::2] = new[:, 1::2].clip(0, out_h)
        keep_boxes(sample, filter_boxes(boxes, new, scale, self.min_side, self.min_area_ratio, self.max_aspect), new)
        return sample

    def __repr__(self) -> str:
        return (f'RandomAffine(scale={self.scale}, translate={self.translate}, degrees={self.degrees}, '
                f'shear={self.shear}, output_size={self.output_size}, enabled={self.enabled})')


@TRANSFORMS.register_module()
class HSVJitter:
    """Multiply hue, saturation and value by gains drawn uniformly in ``1 +- (hgain, sgain, vgain)``."""

    def __init__(self, hgain: float = 0.015, sgain: float = 0.7, vgain: float = 0.4, p: float = 1.0) -> None:
        if min(hgain, sgain, vgain) < 0:
            raise ValueError(f'HSV gains must be >= 0, got {(hgain, sgain, vgain)}')
        self.gains = np.array([hgain, sgain, vgain], np.float64)
        self.p = p

    @staticmethod
    def tables(gains: np.ndarray) -> List[np.ndarray]:
        """The uint8 look-up tables of hue (modulo 180, OpenCV's 8-bit hue range), saturation and value."""
        x = np.arange(256, dtype=np.float64)
        hue = ((x * gains[0]) % 180).astype(np.uint8)
        sat = np.clip(x * gains[1], 0, 255).astype(np.uint8)
        val = np.clip(x * gains[2], 0, 255).astype(np.uint8)
        return [hue, sat, val]

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        img = _check_image(sample, 'HSVJitter')
        if np.random.rand() >= self.p or not self.gains.any():
            return sample
        gains = np.random.uniform(-1, 1, 3) * self.gains + 1
        hue, sat, val = self.tables(gains)
        h, s, v = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2HSV))
        hsv = cv2.merge([cv2.LUT(h, hue), cv2.LUT(s, sat), cv2.LUT(v, val)])
        sample['img'] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return sample

    def __repr__(self) -> str:
        return f'HSVJitter(gains={self.gains.tolist()}, p={self.p})'


def yolo_train_pipeline(img_scale: int = 640, mosaic: bool = True, affine_scale: Tuple[float, float] = (0.5, 1.5),
                        translate: float = 0.1, hsv_gains: Tuple[float, float, float] = (0.015, 0.7, 0.4),
                        flip_p: float = 0.5, rare_p: float = 0.01) -> List[dict]:
    """The training pipeline of issue 14: mosaic, random affine to ``img_scale`` with the box filter, HSV gains,
    horizontal flip and the rare blur / median blur / gray / CLAHE (albumentations).

    ``mosaic=False`` keeps the ``Mosaic`` stage with ``p=0``: it then only resizes each image to long side
    ``img_scale`` before the affine."""
    return [
        dict(type='Mosaic', img_scale=img_scale, pad_val=PAD_VALUE, p=1.0 if mosaic else 0.0),
        dict(type='RandomAffine', scale=affine_scale, translate=translate, output_size=img_scale, pad_val=PAD_VALUE),
        dict(type='HSVJitter', hgain=hsv_gains[0], sgain=hsv_gains[1], vgain=hsv_gains[2]),
        dict(type='Albumentations', transforms=[
            dict(type='HorizontalFlip', p=flip_p), dict(type='Blur', p=rare_p), dict(type='MedianBlur', p=rare_p),
            dict(type='ToGray', p=rare_p), dict(type='CLAHE', p=rare_p)]),
    ]
