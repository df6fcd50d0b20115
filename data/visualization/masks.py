"""Label maps for people: class palettes, colour overlays with a legend, and palette PNG files."""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

Color = Tuple[int, int, int]

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')
CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
                      'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
                      'bicycle')
# the official cityscapesScripts colours of the 19 training classes
CITYSCAPES_PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
                      (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
                      (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
                      (0, 80, 100), (0, 0, 230), (119, 11, 32))


def voc_palette(n: int = 256) -> List[Color]:
    """The PASCAL VOC colour map: bits of the class index spread over the high bits of R, G and B."""
    colors = []
    for index in range(n):
        r = g = b = 0
        c, shift = index, 7
        while c:
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
            shift -= 1
        colors.append((r, g, b))
    return colors


def palette_for(num_classes: int) -> List[Color]:
    """Cityscapes colours for 19 classes, else the VOC colour map."""
    if num_classes == len(CITYSCAPES_PALETTE):
        return list(CITYSCAPES_PALETTE)
    return voc_palette(max(num_classes, 1))


def default_class_names(num_classes: int) -> List[str]:
    if num_classes == len(VOC_CLASSES):
        return list(VOC_CLASSES)
    if num_classes == len(CITYSCAPES_CLASSES):
        return list(CITYSCAPES_CLASSES)
    return [f'class {i}' for i in range(num_classes)]


def colorize(seg: np.ndarray, palette: Sequence[Color], ignore_index: int = 255,
             ignore_color: Color = (255, 255, 255)) -> np.ndarray:
    """An HxW label map as an HxWx3 RGB picture (``ignore_index`` in ``ignore_color``)."""
    seg = np.asarray(seg)
    if seg.ndim != 2:
        raise ValueError(f'expected an HxW label map, got shape {seg.shape}')
    return color_table(int(seg.max(initial=0)), palette, ignore_index, ignore_color)[seg.clip(0)]


def color_table(max_label: int, palette: Sequence[Color], ignore_index: int = 255,
                ignore_color: Color = (255, 255, 255)) -> np.ndarray:
    """``N x 3`` uint8 colours indexed by label, for labels up to ``max_label``: the palette, ``ignore_color`` at
    ``ignore_index``, black for labels past the palette."""
    table = np.zeros((max(max_label + 1, len(palette), ignore_index + 1), 3), np.uint8)
    table[:len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)
    table[ignore_index] = ignore_color
    return table


def draw_legend(image: np.ndarray, labels: Sequence[int], names: Sequence[str], palette: Sequence[Color],
                scale: float = 0.45) -> np.ndarray:
    """Write a colour-swatch legend for ``labels`` in the top-left corner (in place, returned)."""
    y = 6
    for label in labels:
        name = names[label] if 0 <= label < len(names) else f'class {label}'
        (w, h), base = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        if y + h + base + 6 > image.shape[0]:
            break
        cv2.rectangle(image, (3, y - 3), (6 + h + 6 + w + 3, y + h + base + 3), (0, 0, 0), -1)
        color = tuple(int(c) for c in palette[label % len(palette)])
        cv2.rectangle(image, (6, y), (6 + h, y + h), color, -1)
        cv2.putText(image, name, (6 + h + 6, y + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        y += h + base + 8
    return image


def draw_segmentation(image: np.ndarray, seg: np.ndarray, palette: Sequence[Color], names: Sequence[str],
                      alpha: float = 0.5, ignore_index: int = 255, legend: bool = True,
                      band_pixels: int = 1 << 18) -> np.ndarray:
    """Blend the class colours into an HxWx3 RGB image (background, class 0, and ``ignore_index`` left as is:
    ``round((1 - alpha) * pixel + alpha * colour)``) and add a legend of the classes present.

    The picture is the only full-size array made: the blend runs over bands of rows of about ``band_pixels``
    pixels each (a whole-image float blend of an 8000 x 6000 photo took 2.9 GB).
    """
    image = np.asarray(image)
    seg = np.asarray(seg)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an HxWx3 RGB image, got shape {image.shape}')
    if image.shape[:2] != seg.shape:
        raise ValueError(f'label map {seg.shape} and image {image.shape[:2]} differ in size')
    table = color_table(int(seg.max(initial=0)), palette, ignore_index)
    out = np.empty(image.shape, np.uint8)
    present = set()
    rows = max(1, band_pixels // max(1, seg.shape[1]))
    for y0 in range(0, seg.shape[0], rows):
        labels, pixels, target = seg[y0:y0 + rows], image[y0:y0 + rows], out[y0:y0 + rows]
        target[...] = pixels
        if legend:
            present.update(int(c) for c in np.unique(labels))
        painted = (labels != 0) & (labels != ignore_index)
        if painted.any():
            colors = table[labels[painted].clip(0)].astype(np.float32)
            blended = (1 - alpha) * pixels[painted].astype(np.float32) + alpha * colors
            target[painted] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    if legend:
        from .panels import label_scale
        present.discard(ignore_index)
        draw_legend(out, sorted(present), names, palette, scale=label_scale(out.shape, 0.45))
    return out


def write_label_png(path: str, seg: np.ndarray, palette: Optional[Sequence[Color]] = None) -> None:
    """Save a label map as an 8-bit PNG (palette mode when ``palette`` is given): pixel value = class index."""
    from PIL import Image
    seg = np.asarray(seg)
    if seg.ndim != 2 or seg.size and (seg.min() < 0 or seg.max() > 255):
        raise ValueError(f'{path}: an 8-bit label PNG needs an HxW map with values 0..255, got shape {seg.shape}')
    from ..io import check_writable
    check_writable(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)) or '.', exist_ok=True)
    image = Image.fromarray(seg.astype(np.uint8), mode='P' if palette is not None else 'L')
    if palette is not None:
        flat = list(np.asarray(voc_palette(256), np.uint8).reshape(-1))
        given = np.asarray(palette, np.uint8).reshape(-1)[:768]
        flat[:len(given)] = given.tolist()
        image.putpalette([int(v) for v in flat])
    image.save(path)


def read_label_png(path: str) -> np.ndarray:
    """An HxW int64 label map from a single-channel or palette PNG (palette indices, not colours)."""
    from PIL import Image
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'label map {path} does not exist')
    try:
        with Image.open(path) as image:
            if image.mode not in ('P', 'L', 'I', 'I;16', '1'):
                raise ValueError(f'{path}: a label map must be a single-channel or palette image, got mode '
                                 f'{image.mode}')
            return np.asarray(image).astype(np.int64)
    except OSError as err:
        raise ValueError(f'cannot decode label map {path}: {err}') from err
