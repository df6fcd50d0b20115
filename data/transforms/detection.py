"""The SSD training augmentation (Liu et al., SSD, ECCV 2016, section 2.2 "Data augmentation").

Three registered transforms act on sample dicts and carry ``gt_bboxes`` / ``gt_labels`` / ``gt_ignore_flags``:

* :class:`SSDPhotometricDistortion`: the photometric distortions SSD takes from Howard (2013): random brightness
  (additive, +-32), contrast (x[0.5, 1.5]), saturation (x[0.5, 1.5]) and hue (+-18 degrees), each with probability
  0.5, contrast either before or after the colour-space steps. Boxes are untouched.
* :class:`SSDExpand`: the "zoom out" of SSD's extended paper: the image is placed at a random position on a canvas
  ``r`` times larger (``r`` in [1, 4]) filled with the dataset mean, boxes shifted with it.
* :class:`SSDMinIoURandomCrop`: the paper's three options, "use the entire original input image", "sample a patch
  so that the minimum jaccard overlap with the objects is 0.1, 0.3, 0.5, 0.7, or 0.9" and "randomly sample a
  patch"; patch sides in [0.3, 1] of the image (area ~[0.1, 1] as in the paper) and aspect ratio in [1/2, 2];
  objects whose centre falls in the patch are kept and clipped to it. A patch qualifies when *some* kept object
  reaches the drawn overlap (the SSD Caffe sampler's and torchvision's ``RandomIoUCrop`` rule); mmdet's stricter
  "every object" rule is ``iou_rule='all'``.

The pixel operations are albumentations' (``RandomBrightnessContrast``, the torchvision-style saturation and hue
functions, ``PadIfNeeded``, ``Crop``); the random parameters are drawn here from NumPy's global generator so that
seeding NumPy (as mmengine does per worker) makes a run repeatable. Horizontal flip and resize are albumentations
transforms run through the :class:`~data.transforms.albu.Albumentations` wrapper: see :func:`ssd_train_pipeline`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import albumentations as A
import cv2
import numpy as np
from albumentations.augmentations.pixel import functional as albu_pixel

from ..registry import TRANSFORMS

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)


def _boxes(sample: Dict[str, Any]) -> np.ndarray:
    return np.asarray(sample.get('gt_bboxes', np.zeros((0, 4))), np.float32).reshape(-1, 4)


def keep_boxes(sample: Dict[str, Any], keep: np.ndarray, boxes: np.ndarray) -> None:
    """Replace the boxes and subset labels/flags with the boolean mask ``keep``."""
    sample['gt_bboxes'] = boxes[keep].astype(np.float32)
    for key, dtype in (('gt_labels', np.int64), ('gt_ignore_flags', bool)):
        if key in sample:
            sample[key] = np.asarray(sample[key], dtype).reshape(-1)[keep]


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes ``a`` (Nx4) and ``b`` (Mx4)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, np.finfo(np.float32).eps)


@TRANSFORMS.register_module()
class SSDPhotometricDistortion:
    """Random brightness, contrast, saturation, hue (and optional channel swap) on an RGB uint8 image."""

    def __init__(self, brightness_delta: float = 32, contrast_range: Tuple[float, float] = (0.5, 1.5),
                 saturation_range: Tuple[float, float] = (0.5, 1.5), hue_delta: float = 18,
                 channel_swap_p: float = 0.0, p: float = 0.5) -> None:
        self.brightness_delta, self.contrast_range = brightness_delta, contrast_range
        self.saturation_range, self.hue_delta = saturation_range, hue_delta
        self.channel_swap_p, self.p = channel_swap_p, p
        self._brightness_contrast = A.RandomBrightnessContrast(p=1.0)

    def _contrast(self, img: np.ndarray) -> np.ndarray:
        if np.random.rand() < self.p:
            img = self._brightness_contrast.apply(img, alpha=np.random.uniform(*self.contrast_range), beta=0.0)
        return img

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        img = np.asarray(sample['img'])
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{sample.get('meta', {}).get('file')}: SSDPhotometricDistortion needs an HxWx3 uint8 "
                             f'image, got {img.dtype} {img.shape}')
        if np.random.rand() < self.p:
            img = self._brightness_contrast.apply(
                img, alpha=1.0, beta=np.random.uniform(-self.brightness_delta, self.brightness_delta))
        contrast_first = np.random.rand() < 0.5
        if contrast_first:
            img = self._contrast(img)
        if np.random.rand() < self.p:
            img = albu_pixel.adjust_saturation_torchvision(img, np.random.uniform(*self.saturation_range))
        if np.random.rand() < self.p:
            img = albu_pixel.adjust_hue_torchvision(img, np.random.uniform(-self.hue_delta, self.hue_delta) / 360)
        if not contrast_first:
            img = self._contrast(img)
        if self.channel_swap_p and np.random.rand() < self.channel_swap_p:
            img = np.ascontiguousarray(img[..., np.random.permutation(3)])
        sample['img'] = img
        return sample

    def __repr__(self) -> str:
        return (f'SSDPhotometricDistortion(brightness_delta={self.brightness_delta}, contrast={self.contrast_range},'
                f' saturation={self.saturation_range}, hue_delta={self.hue_delta}, p={self.p})')


@TRANSFORMS.register_module()
class SSDExpand:
    """Zoom out: put the image on a mean-filled canvas ``ratio`` times larger at a random position (prob. ``p``)."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN_RGB, ratio_range: Tuple[float, float] = (1.0, 4.0),
                 p: float = 0.5) -> None:
        if ratio_range[0] < 1 or ratio_range[1] < ratio_range[0]:
            raise ValueError(f'ratio_range must satisfy 1 <= low <= high, got {ratio_range}')
        self.mean, self.ratio_range, self.p = tuple(float(m) for m in mean), ratio_range, p
        self._pad = A.PadIfNeeded(min_height=None, min_width=None, pad_height_divisor=1, pad_width_divisor=1,
                                  border_mode=cv2.BORDER_CONSTANT, fill=self.mean, p=1.0)

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        if np.random.rand() >= self.p:
            return sample
        img = sample['img']
        h, w = img.shape[:2]
        ratio = np.random.uniform(*self.ratio_range)
        new_h, new_w = int(h * ratio), int(w * ratio)
        left, top = int(np.random.uniform(0, new_w - w)), int(np.random.uniform(0, new_h - h))
        sample['img'] = self._pad.apply(img, pad_top=top, pad_bottom=new_h - h - top, pad_left=left,
                                        pad_right=new_w - w - left)
        boxes = _boxes(sample) + np.array([left, top, left, top], np.float32)
        sample['gt_bboxes'] = boxes
        sample.setdefault('meta', {})['img_shape'] = (new_h, new_w)
        return sample

    def __repr__(self) -> str:
        return f'SSDExpand(mean={self.mean}, ratio_range={self.ratio_range}, p={self.p})'


@TRANSFORMS.register_module()
class SSDMinIoURandomCrop:
    """Keep the image, or crop a patch whose IoU with the objects reaches a randomly drawn minimum (SSD, section 2.2).

    Modes: "keep the whole image" (when ``keep_original``) and one per entry of ``min_ious``; the default
    ``(0.0, 0.1, 0.3, 0.5, 0.7, 0.9)`` is the paper's list, ``0.0`` being its "randomly sample a patch" (any patch
    that keeps at least one object centre). For a drawn mode, up to ``max_trials`` patches are sampled (sides in
    [``min_crop_size``, 1] of the image's, height/width in ``aspect_ratio_range``); a patch qualifies when at least
    one object centre lies inside it and

    * ``iou_rule='any'`` (the paper, SSD's Caffe sampler, torchvision's ``RandomIoUCrop``): *some* kept object has
      IoU >= the drawn minimum with the patch;
    * ``iou_rule='all'`` (mmdet's ``MinIoURandomCrop``): *every* object has IoU >= the drawn minimum.

    When no patch qualifies, another mode is drawn, up to ``max_mode_draws`` times (torchvision and mmdet loop
    until one succeeds); only then is the sample returned unchanged. Images without boxes accept any patch.
    """

    def __init__(self, min_ious: Sequence[float] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size: float = 0.3,
                 aspect_ratio_range: Tuple[float, float] = (0.5, 2.0), max_trials: int = 50,
                 keep_original: bool = True, iou_rule: str = 'any', max_mode_draws: int = 100) -> None:
        if not 0 < min_crop_size <= 1:
            raise ValueError(f'min_crop_size must be in (0, 1], got {min_crop_size}')
        if iou_rule not in ('any', 'all'):
            raise ValueError(f"iou_rule must be 'any' (SSD paper, torchvision) or 'all' (mmdet), got {iou_rule!r}")
        if any(not 0 <= m <= 1 for m in min_ious):
            raise ValueError(f'min_ious must lie in [0, 1], got {list(min_ious)}')
        if max_trials < 1 or max_mode_draws < 1:
            raise ValueError(f'max_trials and max_mode_draws must be >= 1, got {max_trials}, {max_mode_draws}')
        self.min_ious, self.min_crop_size = tuple(min_ious), min_crop_size
        self.aspect_ratio_range, self.max_trials, self.keep_original = aspect_ratio_range, max_trials, keep_original
        self.iou_rule, self.max_mode_draws = iou_rule, max_mode_draws
        self.modes: List[Optional[float]] = ([None] if keep_original else []) + list(self.min_ious)
        if not self.modes:
            raise ValueError('SSDMinIoURandomCrop needs keep_original=True or at least one entry in min_ious')

    def _qualifies(self, patch: np.ndarray, boxes: np.ndarray, min_iou: float) -> bool:
        if not len(boxes):
            return True
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = ((centers[:, 0] > patch[0]) & (centers[:, 1] > patch[1]) &
                  (centers[:, 0] < patch[2]) & (centers[:, 1] < patch[3]))
        if not inside.any():
            return False
        if self.iou_rule == 'all':
            return bool(box_iou_np(patch[None].astype(np.float32), boxes).min() >= min_iou)
        return bool(box_iou_np(patch[None].astype(np.float32), boxes[inside]).max() >= min_iou)

    def sample_patch(self, h: int, w: int, boxes: np.ndarray, min_iou: float) -> Optional[np.ndarray]:
        """An integer patch ``[x1, y1, x2, y2]`` meeting the constraints, or None after ``max_trials``."""
        for _ in range(self.max_trials):
            new_w = np.random.uniform(self.min_crop_size * w, w)
            new_h = np.random.uniform(self.min_crop_size * h, h)
            if not self.aspect_ratio_range[0] <= new_h / new_w <= self.aspect_ratio_range[1]:
                continue
            left, top = np.random.uniform(0, w - new_w), np.random.uniform(0, h - new_h)
            patch = np.array([left, top, left + new_w, top + new_h]).astype(int)
            if patch[2] <= patch[0] or patch[3] <= patch[1]:
                continue
            if self._qualifies(patch, boxes, min_iou):
                return patch
        return None

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        img = sample['img']
        h, w = img.shape[:2]
        boxes = _boxes(sample)
        patch = None
        for _ in range(self.max_mode_draws):
            mode = self.modes[np.random.randint(len(self.modes))]
            if mode is None:
                return sample
            patch = self.sample_patch(h, w, boxes, mode)
            if patch is not None:
                break
        if patch is None:
            return sample
        x1, y1, x2, y2 = (int(v) for v in patch)
        sample['img'] = A.Crop(x_min=x1, y_min=y1, x_max=x2, y_max=y2).apply(img, crop_coords=(x1, y1, x2, y2))
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        keep = (centers[:, 0] > x1) & (centers[:, 1] > y1) & (centers[:, 0] < x2) & (centers[:, 1] < y2)
        shifted = boxes.copy()
        shifted[:, 0::2] = shifted[:, 0::2].clip(x1, x2) - x1
        shifted[:, 1::2] = shifted[:, 1::2].clip(y1, y2) - y1
        keep_boxes(sample, keep, shifted)
        sample.setdefault('meta', {})['img_shape'] = (y2 - y1, x2 - x1)
        return sample

    def __repr__(self) -> str:
        return (f'SSDMinIoURandomCrop(min_ious={self.min_ious}, min_crop_size={self.min_crop_size}, '
                f'aspect_ratio_range={self.aspect_ratio_range}, keep_original={self.keep_original}, '
                f'iou_rule={self.iou_rule!r})')


def ssd_train_pipeline(size: int = 300, mean: Sequence[float] = IMAGENET_MEAN_RGB) -> List[dict]:
    """SSD training augmentation as transform configs: distort, zoom out, min-IoU crop, flip, resize to square."""
    return [dict(type='SSDPhotometricDistortion'),
            dict(type='SSDExpand', mean=tuple(mean), ratio_range=(1.0, 4.0), p=0.5),
            dict(type='SSDMinIoURandomCrop'),
            dict(type='Albumentations', transforms=[dict(type='HorizontalFlip', p=0.5),
                                                    dict(type='Resize', height=size, width=size)])]


def ssd_test_pipeline(size: int = 300) -> List[dict]:
    """Test-time resizing to the square input (SSD resizes without keeping the aspect ratio)."""
    return [dict(type='Albumentations', transforms=[dict(type='Resize', height=size, width=size)])]
