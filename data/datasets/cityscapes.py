"""Cityscapes fine annotations (Cordts et al., 2016): ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with
``gtFine/<split>/<city>/*_gtFine_labelIds.png``; label ids become the 19 training ids of the benchmark
(cityscapesScripts ``labels.py``), every other id 255 (ignored)."""
from __future__ import annotations

import glob
import os
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

from ..registry import DATASETS
from .seg_base import SegmentationDataset, read_label_map

CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
                      'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                      'motorcycle', 'bicycle')
# label id -> train id for the 19 evaluated classes (cityscapesScripts, helpers/labels.py)
LABEL_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                     26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
MAX_LABEL_ID = 33


def label_ids_to_train_ids(label_ids: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    lut = np.full(256, ignore_index, np.int64)
    for label, train in LABEL_TO_TRAIN_ID.items():
        lut[label] = train
    return lut[np.asarray(label_ids, np.int64).clip(0, 255)]


@DATASETS.register_module()
class CityscapesSegmentation(SegmentationDataset):
    """Cityscapes ``split`` ('train', 'val', 'test') under ``data_root``; 19 classes."""

    CLASSES = CITYSCAPES_CLASSES

    def __init__(self, data_root: str, split: str = 'train', pipeline: Optional[Sequence[Union[dict, Callable]]] = None,
                 ignore_index: int = 255, test_mode: bool = False) -> None:
        super().__init__(pipeline, ignore_index, test_mode)
        image_dir = os.path.join(data_root, 'leftImg8bit', split)
        if not os.path.isdir(image_dir):
            raise FileNotFoundError(f'Cityscapes image folder {image_dir} does not exist')
        for image in sorted(glob.glob(os.path.join(image_dir, '*', '*_leftImg8bit.png'))):
            city = os.path.basename(os.path.dirname(image))
            stem = os.path.basename(image)[:-len('_leftImg8bit.png')]
            mask = os.path.join(data_root, 'gtFine', split, city, f'{stem}_gtFine_labelIds.png')
            self.records.append((stem, image, mask))
        if not self.records:
            raise ValueError(f'no *_leftImg8bit.png images under {image_dir}')

    def load_mask(self, mask_ref, image_shape) -> Tuple[np.ndarray, str]:
        label_ids = read_label_map(mask_ref)
        values = np.unique(label_ids)
        bad = values[((values < 0) | (values > MAX_LABEL_ID)) & (values != self.ignore_index)]
        if bad.size:
            raise ValueError(f'{mask_ref}: label ids {bad[:10].tolist()} are not Cityscapes label ids (0..33)')
        return label_ids_to_train_ids(label_ids, self.ignore_index), mask_ref
