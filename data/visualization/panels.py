"""Labelled side-by-side panels (super-resolution comparisons, input beside prediction)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


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
    """Place RGB images of one height side by side with a label on each (text size follows the panel size)."""
    height = max(im.shape[0] for im in images)
    panels = []
    for image, label in zip(images, labels):
        panel = np.zeros((height, image.shape[1], 3), np.uint8)
        panel[:image.shape[0]] = image if image.ndim == 3 else image[..., None]
        panels.append(put_label(panel, label, scale=label_scale(panel.shape, 0.5),
                                thickness=max(1, line_width(panel.shape) // 2)))
        panels.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(panels[:-1], axis=1)
