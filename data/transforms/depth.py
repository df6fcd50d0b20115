"""FastDepth's NYU Depth v2 pre-processing (Wofk et al., 2019, section IV, after Ma & Karaman's sparse-to-dense).

Evaluation: resize by ``250 / 480`` (for 480x640 frames), centre crop 228x304, resize to 224x224.
Training: the same with a random scale ``s`` in [1, 1.5] (the image is enlarged by ``s`` so depth is divided by
``s``), a rotation in [-5, 5] degrees, colour jitter and a horizontal flip.

``gt_depth`` is always resampled by nearest neighbour, so invalid zeros never mix with valid depths; pixels rotated
in from outside the frame get depth 0 (invalid). The image follows ``interpolation``: ``'nearest'`` as the official
FastDepth loaders do (``scipy.misc.imresize(..., 'nearest')`` and ``scipy.ndimage.rotate(order=0)``; the image
then samples exactly the pixels the depth map samples), or ``'linear'`` (bilinear, area-averaged when shrinking).
``meta['img_shape']`` is the output size and ``meta['crop_box']`` (x0, y0, x1, y1) the region of the original
image the output covers, in original pixels, which ``DepthEstimator.predict`` uses to map depth back.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import albumentations as A
import cv2
import numpy as np

from ..registry import TRANSFORMS

Sample = Dict[str, Any]


def _file(sample: Sample) -> str:
    return str(sample.get('meta', {}).get('file') or sample.get('meta', {}).get('img_id') or '<sample>')


INTERPOLATIONS = ('linear', 'nearest')


def _check_interpolation(interpolation: str) -> str:
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}')
    return interpolation


def _resize(sample: Sample, size: Tuple[int, int], interpolation: str = 'linear') -> None:
    """Resize ``img`` (``interpolation``: bilinear/area or nearest) and ``gt_depth`` (nearest) to ``size = (h, w)``."""
    h, w = size
    image = sample['img']
    shrink = h < image.shape[0] and w < image.shape[1]
    if interpolation == 'nearest':
        flag = cv2.INTER_NEAREST  # the same sampling grid as the depth map's
    else:
        flag = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    sample['img'] = cv2.resize(image, (w, h), interpolation=flag)
    if 'gt_depth' in sample:
        sample['gt_depth'] = cv2.resize(np.ascontiguousarray(sample['gt_depth'], np.float32), (w, h),
                                        interpolation=cv2.INTER_NEAREST)


def _check(sample: Sample, keep_original: bool = False) -> None:
    image = sample.get('img')
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'{_file(sample)}: expected an HxWx3 image, got '
                         f'{getattr(image, "shape", type(image).__name__)}')
    sample.setdefault('meta', {}).setdefault('ori_shape', tuple(image.shape[:2]))
    depth = sample.get('gt_depth')
    if depth is not None and tuple(depth.shape) != tuple(image.shape[:2]):
        raise ValueError(f'{_file(sample)}: depth map {tuple(depth.shape)} and image {tuple(image.shape[:2])} '
                         'differ in size')
    if keep_original and depth is not None:  # for scoring at the original resolution (e.g. the Eigen crop)
        sample.setdefault('gt_depth_ori', np.array(depth, np.float32))


def _set_shape(sample: Sample, box: Tuple[float, float, float, float]) -> None:
    meta = sample['meta']
    meta['img_shape'] = tuple(sample['img'].shape[:2])
    meta['crop_box'] = tuple(float(v) for v in box)


@TRANSFORMS.register_module()
class DepthResize:
    """Resize the whole frame to ``size = (h, w)`` (inference on any image; ``crop_box`` is the full frame).

    ``keep_original=True`` keeps the untouched ground truth as ``gt_depth_ori`` for
    ``DepthMetric(resolution='original')``; ``interpolation`` of the image: ``'linear'`` or ``'nearest'``.
    """

    def __init__(self, size: Sequence[int] = (224, 224), keep_original: bool = False,
                 interpolation: str = 'linear') -> None:
        self.size = (int(size[0]), int(size[1]))
        self.keep_original = keep_original
        self.interpolation = _check_interpolation(interpolation)

    def __call__(self, sample: Sample) -> Sample:
        _check(sample, self.keep_original)
        h, w = sample['img'].shape[:2]
        _resize(sample, self.size, self.interpolation)
        _set_shape(sample, (0.0, 0.0, float(w), float(h)))
        return sample

    def __repr__(self) -> str:
        return f'DepthResize(size={self.size}, interpolation={self.interpolation!r})'


@TRANSFORMS.register_module()
class FastDepthResizeCrop:
    """Evaluation pre-processing: scale by ``resize_height / reference_height``, centre crop, resize.

    Args:
        resize_height / reference_height: the scale factor (250 / 480: NYU frames become 250x333).
        crop_size: (h, w) of the centre crop (228, 304).
        out_size: (h, w) the network sees (224, 224).
        keep_original: keep the untouched ground truth as ``gt_depth_ori``.
        interpolation: of the image, ``'linear'`` (bilinear/area) or ``'nearest'`` (the official loaders).
    """

    def __init__(self, resize_height: float = 250.0, reference_height: float = 480.0,
                 crop_size: Sequence[int] = (228, 304), out_size: Sequence[int] = (224, 224),
                 keep_original: bool = False, interpolation: str = 'linear') -> None:
        self.keep_original = keep_original
        self.interpolation = _check_interpolation(interpolation)
        self.scale = resize_height / reference_height
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.out_size = (int(out_size[0]), int(out_size[1]))

    def _scaled_size(self, sample: Sample, factor: float) -> Tuple[int, int]:
        h, w = sample['img'].shape[:2]
        size = (int(round(h * factor)), int(round(w * factor)))
        if size[0] < self.crop_size[0] or size[1] < self.crop_size[1]:
            raise ValueError(f'{_file(sample)}: a {h}x{w} frame scaled by {factor:.3f} is {size[0]}x{size[1]}, '
                             f'smaller than the {self.crop_size[0]}x{self.crop_size[1]} crop')
        return size

    def __call__(self, sample: Sample) -> Sample:
        _check(sample, self.keep_original)
        size = self._scaled_size(sample, self.scale)
        _resize(sample, size, self.interpolation)
        ch, cw = self.crop_size
        y0, x0 = (size[0] - ch) // 2, (size[1] - cw) // 2
        sample['img'] = np.ascontiguousarray(sample['img'][y0:y0 + ch, x0:x0 + cw])
        if 'gt_depth' in sample:
            sample['gt_depth'] = np.ascontiguousarray(sample['gt_depth'][y0:y0 + ch, x0:x0 + cw])
        _resize(sample, self.out_size, self.interpolation)
        _set_shape(sample, (x0 / self.scale, y0 / self.scale, (x0 + cw) / self.scale, (y0 + ch) / self.scale))
        return sample

    def __repr__(self) -> str:
        return (f'FastDepthResizeCrop(scale={self.scale:.4f}, crop={self.crop_size}, out={self.out_size}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class FastDepthAugment(FastDepthResizeCrop):
    """Training pre-processing: random scale (depth / s), rotation, centre crop, flip, colour jitter, resize.

    Args:
        scale_range: ``s`` is drawn uniformly from it (the paper: [1, 1.5]).
        max_rotation: degrees; the angle is uniform in [-max_rotation, max_rotation] (the paper: 5).
        jitter: brightness/contrast/saturation strength of the colour jitter (0.4; 0 disables it).
        flip_prob: probability of a horizontal flip (0.5).
        seed: a private generator for reproducible draws (default: numpy's global one).
        interpolation: of the image in the resizes and the rotation, ``'linear'`` or ``'nearest'`` (the official
            loaders, whose ``Rotate`` is ``scipy.ndimage.rotate(order=0)``).
        others: as ``FastDepthResizeCrop``.
    """

    def __init__(self, scale_range: Sequence[float] = (1.0, 1.5), max_rotation: float = 5.0, jitter: float = 0.4,
                 flip_prob: float = 0.5, resize_height: float = 250.0, reference_height: float = 480.0,
                 crop_size: Sequence[int] = (228, 304), out_size: Sequence[int] = (224, 224),
                 seed: Optional[int] = None, interpolation: str = 'linear') -> None:
        super().__init__(resize_height, reference_height, crop_size, out_size, interpolation=interpolation)
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f'scale_range must be (low, high) with 0 < low <= high, got {scale_range}')
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.max_rotation, self.flip_prob = float(max_rotation), float(flip_prob)
        self.jitter = float(jitter)
        self.color = (A.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=0.0, p=1.0)
                      if jitter > 0 else None)
        # numpy's global generator by default, which mmengine seeds per dataloader worker
        self.rng = np.random.default_rng(seed) if seed is not None else np.random

    def __call__(self, sample: Sample) -> Sample:
        _check(sample)
        s = float(self.rng.uniform(*self.scale_range))
        angle = float(self.rng.uniform(-self.max_rotation, self.max_rotation))
        flip = bool(self.rng.random() < self.flip_prob)
        size = self._scaled_size(sample, self.scale * s)
        _resize(sample, size, self.interpolation)
        if 'gt_depth' in sample:
            sample['gt_depth'] = sample['gt_depth'] / np.float32(s)  # enlarged by s = seen s times closer
        # rotate about the frame centre and take the centred crop in one affine warp
        ch, cw = self.crop_size
        centre = ((size[1] - 1) / 2.0, (size[0] - 1) / 2.0)
        matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
        matrix[0, 2] -= (size[1] - cw) // 2
        matrix[1, 2] -= (size[0] - ch) // 2
        if flip:  # x -> (cw - 1) - x
            matrix = np.array([[-1.0, 0.0, cw - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0.0, 0.0, 1.0]])
        image_flag = cv2.INTER_NEAREST if self.interpolation == 'nearest' else cv2.INTER_LINEAR
        sample['img'] = cv2.warpAffine(sample['img'], matrix, (cw, ch), flags=image_flag,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if 'gt_depth' in sample:
            sample['gt_depth'] = cv2.warpAffine(sample['gt_depth'].astype(np.float32), matrix, (cw, ch),
                                                flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                                borderValue=0)
        if self.color is not None:
            sample['img'] = self.color(image=sample['img'])['image']
        _resize(sample, self.out_size, self.interpolation)
        factor = self.scale * s
        h0, w0 = (size[0] - ch) // 2 / factor, (size[1] - cw) // 2 / factor
        _set_shape(sample, (w0, h0, w0 + cw / factor, h0 + ch / factor))
        sample['meta']['depth_scale'] = s
        sample['meta']['rotation'] = angle
        sample['meta']['flip'] = flip
        return sample

    def __repr__(self) -> str:
        return (f'FastDepthAugment(scale_range={self.scale_range}, max_rotation={self.max_rotation}, '
                f'jitter={self.jitter}, flip_prob={self.flip_prob}, out={self.out_size}, '
                f'interpolation={self.interpolation!r})')
