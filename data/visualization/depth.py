"""Colour-mapped depth for people: near is warm (red), far is cold (blue), invalid (0) is black."""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from .panels import label_panels


def depth_range(depth: np.ndarray, max_samples: int = 1 << 22) -> Tuple[float, float]:
    """(near, far) of the valid pixels (2nd and 98th percentiles, robust to a few outliers).

    Maps over ``max_samples`` pixels are read on a regular grid of about that many pixels (every ``s``-th row and
    column), so a large map costs no full-size copies.
    """
    depth = np.asarray(depth)
    step = max(1, int(np.ceil(np.sqrt(depth.size / max_samples)))) if depth.ndim == 2 else 1
    sample = depth[::step, ::step] if step > 1 else depth
    valid = sample[np.isfinite(sample) & (sample > 0)]
    if valid.size == 0:
        return 0.0, 1.0
    near, far = np.percentile(valid, [2, 98])
    return float(near), float(max(far, near + 1e-6))


def colorize_depth(depth: np.ndarray, near: Optional[float] = None, far: Optional[float] = None,
                   colormap: int = cv2.COLORMAP_TURBO, band_pixels: int = 1 << 18) -> np.ndarray:
    """HxW metres -> HxWx3 uint8 RGB; ``near`` maps to the warm end, ``far`` to the cold end.

    Computed over bands of rows of about ``band_pixels`` pixels: the picture is the only full-size array made.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'expected an HxW depth map, got shape {depth.shape}')
    if near is None or far is None:
        auto_near, auto_far = depth_range(depth)
        near = auto_near if near is None else near
        far = auto_far if far is None else far
    out = np.empty(depth.shape + (3,), np.uint8)
    rows = max(1, band_pixels // max(1, depth.shape[1]))
    for y0 in range(0, depth.shape[0], rows):
        band = np.asarray(depth[y0:y0 + rows], np.float32)
        invalid = ~(np.isfinite(band) & (band > 0))
        closeness = np.clip((far - band) / max(far - near, 1e-6), 0.0, 1.0)  # 1 = near
        closeness[invalid] = 0.0  # painted black below
        bgr = cv2.applyColorMap(np.round(closeness * 255).astype(np.uint8), colormap)
        target = out[y0:y0 + rows]
        target[...] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        target[invalid] = 0
    return out


def depth_panel(image: np.ndarray, depth: np.ndarray, near: Optional[float] = None,
                far: Optional[float] = None) -> np.ndarray:
    """The input image beside its colour-mapped depth (resized to the image), labelled with the range."""
    if depth.shape[:2] != image.shape[:2]:
        depth = cv2.resize(depth.astype(np.float32), (image.shape[1], image.shape[0]),
                           interpolation=cv2.INTER_NEAREST)
    auto_near, auto_far = depth_range(depth)
    near = auto_near if near is None else near
    far = auto_far if far is None else far
    return label_panels([image, colorize_depth(depth, near, far)],
                        ['input', f'depth {near:.1f}-{far:.1f} m (near red)'])
