"""ITU-R BT.601 studio-swing YCbCr, as MATLAB's ``rgb2ycbcr``/``ycbcr2rgb`` (the convention of SR benchmarks).

Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in [0, 255]; Y in [16, 235], Cb/Cr in [16, 240].
"""
from __future__ import annotations

import numpy as np

_RGB_TO_YCBCR = np.array([[65.481, 128.553, 24.966],
                          [-37.797, -74.203, 112.0],
                          [112.0, -93.786, -18.214]]) / 255.0
_OFFSET = np.array([16.0, 128.0, 128.0])


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB in [0, 255] (any dtype) -> HxW float64 luma in [16, 235]."""
    rgb = np.asarray(image, dtype=np.float64)
    if rgb.ndim == 2:
        return rgb
    return rgb @ _RGB_TO_YCBCR[0] + _OFFSET[0]


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) @ _RGB_TO_YCBCR.T + _OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of ``rgb_to_ycbcr``; returns float64 RGB (not clipped)."""
    return (np.asarray(ycbcr, dtype=np.float64) - _OFFSET) @ np.linalg.inv(_RGB_TO_YCBCR).T
