"""Labelled side-by-side panels (super-resolution comparisons, input beside prediction)."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def put_label(image: np.ndarray, text: str, origin=(6, 6), scale: float = 0.5) -> np.ndarray:
    """Write ``text`` in white on a dark box at the top-left of an RGB image (in place, returned)."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = origin
    cv2.rectangle(image, (x - 3, y - 3), (x + w + 3, y + h + base + 3), (0, 0, 0), -1)
    cv2.putText(image, text, (x, y + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def label_panels(images: Sequence[np.ndarray], labels: Sequence[str], gap: int = 4) -> np.ndarray:
    """Place RGB images of one height side by side with a label on each."""
    height = max(im.shape[0] for im in images)
    panels = []
    for image, label in zip(images, labels):
        panel = np.zeros((height, image.shape[1], 3), np.uint8)
        panel[:image.shape[0]] = image if image.ndim == 3 else image[..., None]
        panels.append(put_label(panel, label))
        panels.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(panels[:-1], axis=1)
