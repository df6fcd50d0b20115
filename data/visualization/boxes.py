"""Detection pictures: boxes with class names and scores."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from .panels import label_scale, line_width, put_label


def palette(n: int) -> np.ndarray:
    """``n`` distinct RGB colours (golden-ratio hues, full saturation)."""
    hues = (np.arange(max(n, 1)) * 0.618033988749895 % 1.0 * 180).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 255)], -1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def draw_boxes(image: np.ndarray, bboxes: np.ndarray, labels: np.ndarray, scores: Optional[np.ndarray] = None,
               class_names: Optional[Sequence[str]] = None, thickness: Optional[int] = None,
               font_scale: Optional[float] = None) -> np.ndarray:
    """A copy of the RGB ``image`` with xyxy ``bboxes`` drawn, each captioned "name score"; line width and text
    size follow the image size (``line_width``, ``label_scale``) unless given."""
    out = np.ascontiguousarray(image.copy())
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, -1)
    thickness = line_width(out.shape) if thickness is None else thickness
    scale = label_scale(out.shape) if font_scale is None else font_scale
    text_thickness = max(1, thickness // 2)
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
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, text_thickness)
        pad = text_thickness + 1
        ty = y1 - th - base - 2 * pad if y1 - th - base - 2 * pad >= 0 else y1
        cv2.rectangle(out, (x1, ty), (x1 + tw + 2 * pad, ty + th + base + 2 * pad), colour, -1)
        cv2.putText(out, text, (x1 + pad, ty + th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    text_thickness, cv2.LINE_AA)
    return out


def draw_detections(image: np.ndarray, result: dict, score_thr: float,
                    class_names: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, int, int]:
    """The boxes of a detection ``result`` (``bboxes``/``scores``/``labels``) with score >= ``score_thr`` drawn on
    a copy of ``image``, and a caption at the bottom-left saying how many were drawn of how many.

    Returns ``(picture, drawn, total)``.
    """
    scores = np.asarray(result['scores'], np.float32).reshape(-1)
    keep = scores >= score_thr
    picture = draw_boxes(image, np.asarray(result['bboxes']).reshape(-1, 4)[keep],
                         np.asarray(result['labels']).reshape(-1)[keep], scores[keep], class_names)
    drawn, total = int(keep.sum()), int(scores.size)
    scale = label_scale(picture.shape)
    put_label(picture, detection_caption(drawn, total, score_thr), origin=(6, -6), scale=scale,
              thickness=max(1, line_width(picture.shape) // 2))
    return picture, drawn, total


def detection_caption(drawn: int, total: int, score_thr: float) -> str:
    """``"3 of 300 boxes (score >= 0.30)"``: what a detection picture shows of the result."""
    return f'{drawn} of {total} boxes (score >= {score_thr:.2f})'

