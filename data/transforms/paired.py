"""Geometric transforms applied alike to an LR input and its r-times larger HR target (ESPCN training).

Randomness comes from ``np.random``, which mmengine seeds per dataloader worker.
"""
from __future__ import annotations

import numpy as np

from ..registry import TRANSFORMS


@TRANSFORMS.register_module()
class PairedRandomCrop:
    """Crop an ``lr_size`` x ``lr_size`` patch of ``img`` and the aligned ``lr_size*r`` patch of ``gt_hr``.

    ESPCN (section 3.2) trains on 17r x 17r HR sub-images, i.e. ``lr_size = 17``.
    """

    def __init__(self, lr_size: int = 17) -> None:
        self.lr_size = lr_size

    def __call__(self, sample: dict) -> dict:
        lr, hr = sample['img'], sample['gt_hr']
        h, w = lr.shape[:2]
        r = hr.shape[0] // h
        if h < self.lr_size or w < self.lr_size:
            raise ValueError(f"{sample['meta'].get('file')}: LR image {h}x{w} is smaller than the "
                             f'{self.lr_size}x{self.lr_size} training patch')
        top, left = np.random.randint(h - self.lr_size + 1), np.random.randint(w - self.lr_size + 1)
        sample['img'] = lr[top:top + self.lr_size, left:left + self.lr_size]
        sample['gt_hr'] = hr[top * r:(top + self.lr_size) * r, left * r:(left + self.lr_size) * r]
        return sample


@TRANSFORMS.register_module()
class PairedFlipRotate:
    """A random element of the dihedral group: horizontal flip and 0/90/180/270 degree rotation, same for both."""

    def __init__(self, flip_prob: float = 0.5, rotate: bool = True) -> None:
        self.flip_prob, self.rotate = flip_prob, rotate

    def __call__(self, sample: dict) -> dict:
        k = int(np.random.randint(4)) if self.rotate else 0
        flip = np.random.rand() < self.flip_prob
        for key in ('img', 'gt_hr'):
            image = np.rot90(sample[key], k)
            if flip:
                image = image[:, ::-1]
            sample[key] = np.ascontiguousarray(image)
        return sample
