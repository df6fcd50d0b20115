"""Helpers of the segmentation tests (imported by name; pytest puts this folder on sys.path): load a tools/ script as a module, tiny models, random BN statistics."""
import importlib.util
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine terms, so key mix-ups show in the logits."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)


def tiny_segmentor(num_classes: int = 3, **kwargs):
    from tasks.segmentation import Segmentor
    cfg = dict(num_classes=num_classes,
               backbone=dict(type='MobileNetV2', width_mult=0.25, out_indices=(-2,), output_stride=16),
               neck=dict(type='ASPP', channels=32), head=dict(type='DeepLabHead'))
    cfg.update(kwargs)
    return Segmentor(**cfg)



def draw_shapes(rng, size: int = 64):
    """An RGB image with a red-ish square (class 1) and a blue-ish disc (class 2) on a noisy grey background."""
    import cv2
    import numpy as np
    img = np.clip(rng.normal(120, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    seg = np.zeros((size, size), np.int64)
    s = int(rng.integers(size // 5, size // 3))
    x, y = (int(v) for v in rng.integers(0, size - s, 2))
    img[y:y + s, x:x + s] = (220, 40, 40)
    seg[y:y + s, x:x + s] = 1
    r = int(rng.integers(size // 8, size // 5))
    cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
    disc = np.zeros((size, size), np.uint8)
    cv2.circle(disc, (cx, cy), r, 1, -1)
    img[disc > 0] = (40, 60, 220)
    seg[disc > 0] = 2
    return img, seg


def write_voc_tree(root, images, masks, splits):
    """A VOC2012-like folder: JPEGImages, SegmentationClass (palette PNG), ImageSets/Segmentation/<split>.txt."""
    import os
    from data.io import write_rgb
    from data.visualization.masks import voc_palette, write_label_png
    for name in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(os.path.join(root, name), exist_ok=True)
    for img_id, image in images.items():
        write_rgb(os.path.join(root, 'JPEGImages', f'{img_id}.jpg'), image)
    for img_id, mask in masks.items():
        write_label_png(os.path.join(root, 'SegmentationClass', f'{img_id}.png'), mask, voc_palette(21))
    for split, ids in splits.items():
        with open(os.path.join(root, 'ImageSets', 'Segmentation', f'{split}.txt'), 'w') as f:
            f.write(''.join(f'{i}\n' for i in ids))
