"""Bicubic resizing with anti-aliasing as PIL does it (the degradation used by the SR benchmark tables)."""
from __future__ import annotations

from typing import Tuple

import numpy as np
from PIL import Image


def bicubic_resize(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize an HxW(xC) uint8 image to ``size = (height, width)`` with PIL's anti-aliased bicubic."""
    height, width = size
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.BICUBIC))


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of ``scale``."""
    h, w = image.shape[:2]
    return image[:h - h % scale, :w - w % scale]


def bicubic_downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """The LR image of a mod-cropped HR image."""
    h, w = image.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f'image of size {h}x{w} is not a multiple of scale {scale}; mod_crop it first')
    return bicubic_resize(image, (h // scale, w // scale))
