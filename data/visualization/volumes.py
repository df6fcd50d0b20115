"""Axial slices of a volume with BraTS labels overlaid: NCR (1) red, ED (2) green, ET (4) yellow."""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from .panels import put_label

LABEL_COLORS = {1: (230, 40, 40), 2: (40, 200, 60), 4: (250, 220, 30)}
LABEL_NAMES = {1: 'NCR', 2: 'ED', 4: 'ET'}


def pick_slices(seg: Optional[np.ndarray], depth: int, count: int) -> np.ndarray:
    """``count`` slice indices spread over the tumour's extent along D (the middle 60% when there is none)."""
    if seg is not None and (seg > 0).any():
        dz = np.where((seg > 0).any(axis=(1, 2)))[0]
        lo, hi = int(dz.min()), int(dz.max())
    else:
        lo, hi = int(depth * 0.2), max(int(depth * 0.8) - 1, int(depth * 0.2))
    return np.unique(np.linspace(lo, hi, count).round().astype(int).clip(0, depth - 1))


def _to_gray(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = (np.asarray(image, np.float32) - lo) / max(hi - lo, 1e-6)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def draw_axial_slices(volume: np.ndarray, seg: Optional[np.ndarray] = None, num_slices: int = 6,
                      channel: int = -1, alpha: float = 0.45, min_size: int = 160, columns: int = 3,
                      title: str = '') -> np.ndarray:
    """A grid of axial slices (index along D) of ``volume`` (``C x D x H x W``, shown: ``channel``, FLAIR by
    default, or ``D x H x W``) with ``seg`` (BraTS labels, ``D x H x W``) blended in; RGB uint8.

    Slices are shown with H flipped so the anterior side (NIfTI +j) is up, as radiology viewers do.
    """
    volume = np.asarray(volume)
    image = volume[channel] if volume.ndim == 4 else volume
    if image.ndim != 3:
        raise ValueError(f'expected a C x D x H x W or D x H x W volume, got shape {volume.shape}')
    if seg is not None and np.shape(seg) != image.shape:
        raise ValueError(f'label map shape {np.shape(seg)} differs from the volume {image.shape}')
    inside = image[image != 0]
    lo, hi = (np.percentile(inside, [1, 99]) if inside.size else (float(image.min()), float(image.max())))
    scale = max(1, int(np.ceil(min_size / max(image.shape[1:]))))
    tiles = []
    for d in pick_slices(seg, image.shape[0], num_slices):
        gray = _to_gray(image[d], lo, hi)
        gray[image[d] == 0] = 0  # outside the brain (z-scored volumes are exactly 0 there)
        tile = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
        if seg is not None:
            for label, color in LABEL_COLORS.items():
                mask = (seg[d] == label) | ((seg[d] == 3) & (label == 4))
                tile[mask] = (1 - alpha) * tile[mask] + alpha * np.array(color, np.float32)
        tile = np.flipud(tile).astype(np.uint8)
        tile = cv2.resize(tile, (tile.shape[1] * scale, tile.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        tiles.append(put_label(np.ascontiguousarray(tile), f'z={d}', scale=0.4))
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    h, w = tiles[0].shape[:2]
    gap = 2
    grid = np.full((rows * (h + gap) + 22, columns * (w + gap) - gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    x = 4
    legend_y = grid.shape[0] - 7
    for label, name in LABEL_NAMES.items():
        cv2.rectangle(grid, (x, legend_y - 10), (x + 10, legend_y), LABEL_COLORS[label], -1)
        cv2.putText(grid, name, (x + 14, legend_y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += 60
    if title:
        cv2.putText(grid, title, (x + 10, legend_y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return grid


__all__: Sequence[str] = ['draw_axial_slices', 'pick_slices', 'LABEL_COLORS']
