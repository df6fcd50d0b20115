"""Detection pictures: boxes with class names and scores."""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np


def palette(n: int) -> np.ndarray:
    """``n`` distinct RGB colours (golden-ratio hues, full saturation)."""
    hues = (np.arange(max(n, 1)) * 0.618033988749895 % 1.0 * 180).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 255)], -1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def draw_boxes(image: np.ndarray, bboxes: np.ndarray, labels: np.ndarray, scores: Optional[np.ndarray] = None,
               class_names: Optional[Sequence[str]] = None, thickness: int = 2, font_scale: float = 0.5) -> np.ndarray:
    """A copy of the RGB ``image`` with xyxy ``bboxes`` drawn, each captioned "name score"."""
    out = np.ascontiguousarray(image.copy())
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, -1)
    bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1)
    colours = palette(int(labels.max()) + 1 if labels.size else 1)
    h, w = out.shape[:2]
    for i, (box, label) in enumerate(zip(bboxes, labels)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
        y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
        colour = tuple(int(c) for c in colours[int(label)])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        name = class_names[int(label)] if class_names is not None and 0 <= label < len(class_names) else str(label)
        text = name if scores is None else f'{name} {float(scores[i]):.2f}'
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1
        cv2.rectangle(out, (x1, ty), (x1 + tw + 2, ty + th + base + 2), colour, -1)
        cv2.putText(out, text, (x1 + 1, ty + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return out
