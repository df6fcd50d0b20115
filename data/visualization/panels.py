"""Labelled side-by-side panels (super-resolution comparisons, input beside prediction) and previews of large
pictures."""
from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np


#: longest side, in pixels, of each panel of a picture meant for people when the result itself is larger (a 12000 x
#: 9000 super-resolved photo is shown at 2048 x 1536; the result is saved at full size separately)
PREVIEW_MAX_SIDE = 2048


def preview_size(shape: Sequence[int], max_side: int = PREVIEW_MAX_SIDE) -> Tuple[int, int]:
    """``(height, width)`` of ``shape`` (H, W, ...) scaled down, aspect kept, so the longer side is at most
    ``max_side``; ``shape`` itself when it already fits."""
    height, width = int(shape[0]), int(shape[1])
    factor = min(1.0, max_side / max(height, width, 1))
    return max(1, round(height * factor)), max(1, round(width * factor))


def fit_preview(image: np.ndarray, max_side: int = PREVIEW_MAX_SIDE) -> np.ndarray:
    """``image`` itself when its longer side is at most ``max_side``, else a copy scaled down to fit
    (``preview_size``) with OpenCV's area interpolation (the average of the covered pixels, no aliasing)."""
    size = preview_size(image.shape, max_side)
    if size == tuple(image.shape[:2]):
        return image
    return cv2.resize(np.ascontiguousarray(image), size[::-1], interpolation=cv2.INTER_AREA)


def line_width(shape: Sequence[int]) -> int:
    """Line width in pixels for an image of ``shape`` (H, W, ...): 2 px for a 640-pixel longer side,
    proportional above and below, at least 1 px, so drawings look alike on a thumbnail and on a 4K frame."""
    return max(1, int(round(max(shape[:2]) / 320)))


def label_scale(shape: Sequence[int], minimum: float = 0.35) -> float:
    """OpenCV font scale of labels: 0.5 (about 11 px high) for a 640-pixel longer side, proportional, at least
    ``minimum`` so the text stays legible on small images."""
    return max(minimum, max(shape[:2]) / 1280)


def put_label(image: np.ndarray, text: str, origin=(6, 6), scale: float = 0.5, thickness: int = 1) -> np.ndarray:
    """Write ``text`` in white on a dark box at ``origin`` (its top-left corner) of an RGB image (in place,
    returned); a negative ``origin`` y counts from the bottom edge."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = origin
    if y < 0:
        y = image.shape[0] + y - (h + base)
    pad = max(3, thickness + 2)
    cv2.rectangle(image, (x - pad, y - pad), (x + w + pad, y + h + base + pad), (0, 0, 0), -1)
    cv2.putText(image, text, (x, y + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return image


def label_panels(images: Sequence[np.ndarray], labels: Sequence[str], gap: int = 4) -> np.ndarray:
    """Place RGB (or gray) images side by side, top-aligned on black, ``gap`` white columns between them, with a
    label on each (text size follows the panel size). The picture is allocated once and each image copied into
    its place: no per-panel copies."""
    if not images or len(images) != len(labels):
        raise ValueError(f'label_panels needs one label per image, got {len(images)} images and {len(labels)} labels')
    height = max(im.shape[0] for im in images)
    width = sum(im.shape[1] for im in images) + gap * (len(images) - 1)
    out = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for image, label in zip(images, labels):
        h, w = image.shape[:2]
        panel = out[:, x:x + w]  # a view: OpenCV draws into it in place
        panel[h:] = 0
        panel[:h] = image if image.ndim == 3 else image[..., None]
        put_label(panel, label, scale=label_scale(panel.shape, 0.5), thickness=max(1, line_width(panel.shape) // 2))
        x += w + gap
    return out
