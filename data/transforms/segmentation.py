"""Segmentation pipelines: image and label mask move together (albumentations, masks by nearest neighbour).

Training (DeepLabv3, Chen et al., 2017, section 4.1): random scale 0.5-2.0, pad to the crop size (image with the
mean colour, mask with 255 so padding is ignored), random crop, horizontal flip, optional photometric jitter
(brightness +-32/255, contrast and saturation 0.5-1.5, hue +-18 degrees, as mmseg's PhotoMetricDistortion).
Testing: the whole image (the data preprocessor pads the batch) or ``SegTestResize``, which resizes the image only,
so the evaluator compares the prediction, mapped back to ``meta['ori_shape']``, with the original mask.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..registry import TRANSFORMS
from .albu import Albumentations

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)


def _pair(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


@TRANSFORMS.register_module()
class SegTrainAugment(Albumentations):
    """Random scale -> pad (mean / 255) -> random crop -> flip -> [photometric jitter], one albumentations Compose.

    Args:
        crop_size: (height, width) or one int (513 for DeepLab on VOC, 769 on Cityscapes).
        scale_range: factors of the image size drawn uniformly (0.5-2.0).
        flip_prob: probability of a horizontal flip.
        photometric: probability of the colour jitter (0 disables it).
        pad_val: RGB fill of the padded image area (the ImageNet mean, so it is 0 after normalisation).
        seg_pad_val: mask fill of the padded area (255 = ignored).
        interpolation: image interpolation of the scaling (masks always nearest).
    """

    def __init__(self, crop_size: Union[int, Sequence[int]] = 513, scale_range: Sequence[float] = (0.5, 2.0),
                 flip_prob: float = 0.5, photometric: float = 0.5, pad_val: Sequence[float] = IMAGENET_MEAN_RGB,
                 seg_pad_val: int = 255, interpolation: int = cv2.INTER_LINEAR) -> None:
        import albumentations as A
        height, width = _pair(crop_size)
        low, high = scale_range
        if not 0 < low <= high:
            raise ValueError(f'scale_range must be 0 < low <= high, got {scale_range}')
        transforms = []
        if (low, high) != (1.0, 1.0):
            transforms.append(A.RandomScale(scale_limit=(low - 1.0, high - 1.0), interpolation=interpolation,
                                            mask_interpolation=cv2.INTER_NEAREST, p=1.0))
        transforms += [
            A.PadIfNeeded(min_height=height, min_width=width, position='top_left', border_mode=cv2.BORDER_CONSTANT,
                          fill=tuple(float(v) for v in pad_val), fill_mask=seg_pad_val),
            A.RandomCrop(height=height, width=width),
        ]
        if flip_prob > 0:
            transforms.append(A.HorizontalFlip(p=flip_prob))
        if photometric > 0:
            transforms.append(A.ColorJitter(brightness=32 / 255, contrast=0.5, saturation=0.5, hue=18 / 360,
                                            p=photometric))
        super().__init__(transforms)
        self.crop_size, self.scale_range = (height, width), (low, high)

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        if 'gt_seg' in sample:
            seg = np.asarray(sample['gt_seg'])
            if seg.shape != sample['img'].shape[:2]:
                raise ValueError(f"{sample.get('meta', {}).get('file')}: mask size {seg.shape} differs from image "
                                 f"size {sample['img'].shape[:2]}")
            sample['gt_seg'] = seg.astype(np.int32)  # OpenCV cannot warp int64
        sample = super().__call__(sample)
        if 'gt_seg' in sample:
            sample['gt_seg'] = np.asarray(sample['gt_seg']).astype(np.int64)
        return sample


@TRANSFORMS.register_module()
class SegTestResize:
    """Resize the image for testing: to ``size`` (h, w), or so its short side is ``short_side`` (torchvision's
    reference evaluates at 520), or its long side at most ``long_side``. ``gt_seg`` is left at the original size
    unless ``resize_mask`` (the prediction is mapped back to ``meta['ori_shape']``)."""

    def __init__(self, size: Optional[Union[int, Sequence[int]]] = None, short_side: Optional[int] = None,
                 long_side: Optional[int] = None, resize_mask: bool = False) -> None:
        if sum(v is not None for v in (size, short_side, long_side)) != 1:
            raise ValueError('give exactly one of size, short_side, long_side')
        self.size = None if size is None else _pair(size)
        self.short_side, self.long_side, self.resize_mask = short_side, long_side, resize_mask

    def target_size(self, height: int, width: int) -> Tuple[int, int]:
        if self.size is not None:
            return self.size
        scale = (self.short_side / min(height, width) if self.short_side is not None
                 else self.long_side / max(height, width))
        return max(1, int(round(height * scale))), max(1, int(round(width * scale)))

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        img = sample['img']
        h, w = self.target_size(*img.shape[:2])
        if (h, w) != img.shape[:2]:
            sample['img'] = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
            if self.resize_mask and 'gt_seg' in sample:
                sample['gt_seg'] = cv2.resize(np.asarray(sample['gt_seg']).astype(np.int32), (w, h),
                                              interpolation=cv2.INTER_NEAREST).astype(np.int64)
        meta = sample.setdefault('meta', {})
        meta.setdefault('ori_shape', tuple(img.shape[:2]))
        meta['img_shape'] = (h, w)
        return sample
