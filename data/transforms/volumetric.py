"""Training transforms for ``C x D x H x W`` volumes with a ``D x H x W`` label map (BraTS).

Patch sampling with a foreground ratio (nnU-Net, Isensee et al., 2021: one third of the patches centred on
foreground), random flips along each axis and per-channel intensity shift/scale (Myronenko, 2018, section 2.3:
shift in [-0.1, 0.1] standard deviations, scale in [0.9, 1.1]). Randomness comes from ``np.random`` (seeded per
worker by mmengine).
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import numpy as np

from ..registry import TRANSFORMS


def _triple(value: Union[int, Sequence[int]], what: str) -> Tuple[int, int, int]:
    values = (value,) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f'{what} must be a positive int or three of them, got {value}')
    return values  # type: ignore[return-value]


def pad_to(volume: np.ndarray, size: Sequence[int], value: float = 0) -> np.ndarray:
    """Pad the last three axes at the end to at least ``size``."""
    pads = [(0, max(0, s - n)) for s, n in zip(size, volume.shape[-3:])]
    if not any(p[1] for p in pads):
        return volume
    return np.pad(volume, [(0, 0)] * (volume.ndim - 3) + pads, constant_values=value)


@TRANSFORMS.register_module()
class RandomVolumePatch:
    """Crop a ``patch_size`` patch; with probability ``fg_ratio`` its centre is a random tumour voxel.

    Volumes smaller than the patch are zero-padded (label 0). ``meta['patch_origin']`` records the corner.
    """

    def __init__(self, patch_size: Union[int, Sequence[int]] = 128, fg_ratio: float = 0.33) -> None:
        if not 0.0 <= fg_ratio <= 1.0:
            raise ValueError(f'fg_ratio must be in [0, 1], got {fg_ratio}')
        self.patch_size, self.fg_ratio = _triple(patch_size, 'patch_size'), fg_ratio

    def __call__(self, sample: dict) -> dict:
        img, seg = sample['img'], sample.get('gt_seg')
        if img.ndim != 4:
            raise ValueError(f"{sample['meta'].get('img_id')}: expected a C x D x H x W volume, got {img.shape}")
        img = pad_to(np.asarray(img), self.patch_size)
        seg = pad_to(np.asarray(seg), self.patch_size) if seg is not None else None
        shape = np.array(img.shape[1:])
        size = np.array(self.patch_size)
        if seg is not None and np.random.rand() < self.fg_ratio and (seg > 0).any():
            fg = np.argwhere(seg > 0)
            centre = fg[np.random.randint(len(fg))]
            corner = np.clip(centre - size // 2, 0, shape - size)
        else:
            corner = np.array([np.random.randint(n - s + 1) for n, s in zip(shape, size)])
        sl = tuple(slice(int(c), int(c + s)) for c, s in zip(corner, size))
        sample['img'] = np.ascontiguousarray(img[(slice(None),) + sl])
        if seg is not None:
            sample['gt_seg'] = np.ascontiguousarray(seg[sl])
        sample['meta'] = dict(sample['meta'], patch_origin=tuple(int(c) for c in corner))
        return sample


@TRANSFORMS.register_module()
class RandomVolumeFlip:
    """Flip image and labels along each of ``axes`` (of D, H, W) independently with probability ``prob``."""

    def __init__(self, prob: float = 0.5, axes: Sequence[int] = (0, 1, 2)) -> None:
        if any(a not in (0, 1, 2) for a in axes):
            raise ValueError(f'axes are spatial axes 0 (D), 1 (H), 2 (W); got {list(axes)}')
        self.prob, self.axes = prob, tuple(axes)

    def __call__(self, sample: dict) -> dict:
        for axis in self.axes:
            if np.random.rand() < self.prob:
                sample['img'] = np.flip(sample['img'], axis=axis + 1)
                if sample.get('gt_seg') is not None:
                    sample['gt_seg'] = np.flip(sample['gt_seg'], axis=axis)
        sample['img'] = np.ascontiguousarray(sample['img'])
        if sample.get('gt_seg') is not None:
            sample['gt_seg'] = np.ascontiguousarray(sample['gt_seg'])
        return sample


@TRANSFORMS.register_module()
class RandomIntensityShiftScale:
    """Per channel ``x * U(1 - scale, 1 + scale) + U(-shift, shift)`` inside the brain (non-zero voxels)."""

    def __init__(self, shift: float = 0.1, scale: float = 0.1, prob: float = 1.0) -> None:
        self.shift, self.scale, self.prob = shift, scale, prob

    def __call__(self, sample: dict) -> dict:
        if np.random.rand() >= self.prob:
            return sample
        img = np.array(sample['img'], dtype=np.float32)  # a copy: cached cases stay untouched
        mask = np.any(img != 0, axis=0)
        for c in range(img.shape[0]):
            factor = np.random.uniform(1 - self.scale, 1 + self.scale)
            offset = np.random.uniform(-self.shift, self.shift)
            img[c][mask] = img[c][mask] * factor + offset
        sample['img'] = img
        return sample
