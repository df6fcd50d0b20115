"""Shared machinery of the semantic-segmentation datasets (VOC/SBD, Cityscapes, COCO-to-VOC).

A dataset lists records ``(img_id, img_path, mask source)``; a sample is ``{'img': HxWx3 uint8 RGB,
'gt_seg': HxW int64 (255 = ignore), 'meta': {'img_id', 'file', 'ori_shape', 'img_shape'}}`` (DESIGN.md). Every mask
is checked when it is read: it must have the image's size and only labels ``0..K-1`` or ``ignore_index``; the error
names the mask file.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from torch.utils.data import Dataset

from ..io import read_rgb
from ..registry import TRANSFORMS


def read_label_map(path: str) -> np.ndarray:
    """An HxW int64 label map from a palette or grey PNG (palette indices, never colours); errors name the file."""
    from PIL import Image
    if not os.path.isfile(path):
        raise FileNotFoundError(f'mask file {path} does not exist')
    try:
        with Image.open(path) as image:
            if image.mode not in ('P', 'L', 'I', 'I;16'):
                raise ValueError(f'{path}: a label mask must be a palette or single-channel image, got mode '
                                 f'{image.mode}')
            return np.asarray(image).astype(np.int64)
    except OSError as err:
        raise ValueError(f'cannot decode mask {path}: {err}') from err


def validate_mask(mask: np.ndarray, image_shape: Tuple[int, int], num_classes: int, ignore_index: int,
                  source: str) -> np.ndarray:
    """Raise ``ValueError`` naming ``source`` when the mask's size or labels are wrong; return it as int64."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'{source}: expected an HxW label mask, got shape {mask.shape}')
    if tuple(mask.shape) != tuple(image_shape[:2]):
        raise ValueError(f'{source}: mask size {mask.shape[0]}x{mask.shape[1]} differs from its image '
                         f'{image_shape[0]}x{image_shape[1]}')
    labels = np.unique(mask)
    bad = labels[((labels < 0) | (labels >= num_classes)) & (labels != ignore_index)]
    if bad.size:
        raise ValueError(f'{source}: labels {bad[:10].tolist()} are outside the classes 0..{num_classes - 1} and '
                         f'the ignore index {ignore_index}')
    return mask.astype(np.int64)


class SegmentationDataset(Dataset):
    """Base: ``self.records`` is a list of ``(img_id, img_path, mask_ref)``; subclasses implement ``load_mask``."""

    CLASSES: Sequence[str] = ()

    def __init__(self, pipeline: Optional[Sequence[Union[dict, Callable]]] = None, ignore_index: int = 255,
                 test_mode: bool = False) -> None:
        self.pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in (pipeline or [])]
        self.ignore_index, self.test_mode = ignore_index, test_mode
        self.records: List[Tuple[str, str, object]] = []
        self.metainfo = dict(task='segmentation', classes=tuple(self.CLASSES))

    @property
    def num_classes(self) -> int:
        return len(self.CLASSES)

    def load_mask(self, mask_ref, image_shape: Tuple[int, int]) -> Tuple[np.ndarray, str]:
        """Return the raw label map and a description of its source (a file name) for error messages."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.records)

    def get_raw(self, index: int) -> dict:
        img_id, img_path, mask_ref = self.records[index]
        image = read_rgb(img_path)
        mask, source = self.load_mask(mask_ref, image.shape[:2])
        mask = validate_mask(mask, image.shape[:2], self.num_classes, self.ignore_index, source)
        return dict(img=image, gt_seg=mask,
                    meta=dict(img_id=img_id, file=img_path, ori_shape=tuple(image.shape[:2]),
                              img_shape=tuple(image.shape[:2]), seg_file=source))

    def __getitem__(self, index: int) -> dict:
        sample = self.get_raw(index)
        for transform in self.pipeline:
            sample = transform(sample)
        return sample
