"""Colour-mapped depth for people: near is warm (red), far is cold (blue), invalid (0) is black."""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from .panels import label_panels


def depth_range(depth: np.ndarray) -> Tuple[float, float]:
    """(near, far) of the valid pixels (2nd and 98th percentiles, robust to a few outliers)."""
    valid = depth[np.isfinite(depth) & (depth > 0)]
    if valid.size == 0:
        return 0.0, 1.0
    near, far = np.percentile(valid, [2, 98])
    return float(near), float(max(far, near + 1e-6))


def colorize_depth(depth: np.ndarray, near: Optional[float] = None, far: Optional[float] = None,
                   colormap: int = cv2.COLORMAP_TURBO) -> np.ndarray:
    """HxW metres -> HxWx3 uint8 RGB; ``near`` maps to the warm end, ``far`` to the cold end."""
    depth = np.asarray(depth, np.float32)
    if depth.ndim != 2:
        raise ValueError(f'expected an HxW depth map, got shape {depth.shape}')
    auto_near, auto_far = depth_range(depth)
    near = auto_near if near is None else near
    far = auto_far if far is None else far
    closeness = np.clip((far - depth) / max(far - near, 1e-6), 0.0, 1.0)  # 1 = near
    bgr = cv2.applyColorMap(np.round(closeness * 255).astype(np.uint8), colormap)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb[~(np.isfinite(depth) & (depth > 0))] = 0
    return rgb


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
