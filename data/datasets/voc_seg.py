"""PASCAL VOC 2012 segmentation and its SBD augmentation (train_aug, 10,582 images).

VOC: ``JPEGImages/<id>.jpg``, palette PNG masks ``SegmentationClass/<id>.png`` (index = class, 255 = boundary /
ignore), splits ``ImageSets/Segmentation/{train,val,trainval}.txt``. SBD (Hariharan et al., 2011,
``benchmark_RELEASE/dataset``): ``img/<id>.jpg``, ``cls/<id>.mat`` (a MATLAB struct ``GTcls`` whose field
``Segmentation`` is the class map, read with scipy), ``train.txt``/``val.txt``. ``train_aug`` is the union of
VOC train and SBD train + val minus VOC val (10,582 images with the full data, as DeepLab and the MobileNetV2
paper use); for images VOC annotates, its mask (with the 255 boundaries) is used, else the SBD one.
``split`` may also name a list file (e.g. the common ``train_aug.txt``), with ``mask_dir`` pointing at converted
PNGs (``SegmentationClassAug``).
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..registry import DATASETS
from .seg_base import SegmentationDataset, read_label_map

VOC_SEG_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
                   'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
                   'train', 'tvmonitor')


def read_id_list(path: str) -> List[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'image list {path} does not exist')
    with open(path) as f:
        ids = [line.split()[0] for line in f if line.strip()]
    # lists like train_aug.txt may hold "/JPEGImages/x.jpg /SegmentationClassAug/x.png": keep the stem
    return [os.path.splitext(os.path.basename(i))[0] for i in ids]


def read_sbd_mat(path: str) -> np.ndarray:
    """The class map of one SBD ``cls/<id>.mat`` file (``GTcls.Segmentation``), as int64."""
    from scipy.io import loadmat
    if not os.path.isfile(path):
        raise FileNotFoundError(f'SBD mask file {path} does not exist')
    try:
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as err:  # scipy raises several types for corrupt files
        raise ValueError(f'cannot read SBD mask {path}: {err}') from err
    if 'GTcls' not in mat or not hasattr(mat['GTcls'], 'Segmentation'):
        raise ValueError(f'{path}: not an SBD class file (expected a struct GTcls with a Segmentation field)')
    return np.asarray(mat['GTcls'].Segmentation).astype(np.int64)


@DATASETS.register_module()
class VOCSegmentation(SegmentationDataset):
    """VOC 2012 segmentation (+ SBD). ``data_root`` is ``.../VOCdevkit/VOC2012``; ``sbd_root`` is
    ``.../benchmark_RELEASE/dataset`` (needed for ``split='train_aug'`` unless a list file and ``mask_dir`` are
    given)."""

    CLASSES = VOC_SEG_CLASSES

    def __init__(self, data_root: str, split: str = 'train', sbd_root: Optional[str] = None,
                 mask_dir: Optional[str] = None, pipeline: Optional[Sequence[Union[dict, Callable]]] = None,
                 ignore_index: int = 255, test_mode: bool = False) -> None:
        super().__init__(pipeline, ignore_index, test_mode)
        if not os.path.isdir(data_root):
            raise FileNotFoundError(f'VOC folder {data_root} does not exist')
        self.data_root, self.sbd_root, self.split = data_root, sbd_root, split
        self.mask_dir = mask_dir or os.path.join(data_root, 'SegmentationClass')
        if split == 'train_aug' and not os.path.isfile(split):
            self.records = self._train_aug_records()
        else:
            list_file = split if os.path.isfile(split) else os.path.join(data_root, 'ImageSets', 'Segmentation',
                                                                         f'{split}.txt')
            self.records = [(i, self._voc_image(i), ('png', os.path.join(self.mask_dir, f'{i}.png')))
                            for i in read_id_list(list_file)]
        if not self.records:
            raise ValueError(f'VOC split {split} under {data_root} lists no images')

    def _voc_image(self, img_id: str) -> str:
        return os.path.join(self.data_root, 'JPEGImages', f'{img_id}.jpg')

    def _train_aug_records(self) -> List[Tuple[str, str, tuple]]:
        if not self.sbd_root or not os.path.isdir(self.sbd_root):
            raise FileNotFoundError(f'train_aug needs sbd_root (benchmark_RELEASE/dataset), got {self.sbd_root}')
        seg_sets = os.path.join(self.data_root, 'ImageSets', 'Segmentation')
        voc_train = read_id_list(os.path.join(seg_sets, 'train.txt'))
        voc_val = set(read_id_list(os.path.join(seg_sets, 'val.txt')))
        sbd = [i for name in ('train.txt', 'val.txt') for i in read_id_list(os.path.join(self.sbd_root, name))]
        ids = sorted((set(voc_train) | set(sbd)) - voc_val)
        records = []
        for i in ids:
            voc_mask = os.path.join(self.mask_dir, f'{i}.png')
            image = self._voc_image(i)
            if not os.path.isfile(image):
                image = os.path.join(self.sbd_root, 'img', f'{i}.jpg')
            mask = ('png', voc_mask) if os.path.isfile(voc_mask) else \
                ('mat', os.path.join(self.sbd_root, 'cls', f'{i}.mat'))
            records.append((i, image, mask))
        return records

    def load_mask(self, mask_ref, image_shape) -> Tuple[np.ndarray, str]:
        kind, path = mask_ref
        return (read_sbd_mat(path) if kind == 'mat' else read_label_map(path)), path

    def split_counts(self) -> Dict[str, int]:
        """How many masks come from VOC PNGs and from SBD .mat files."""
        kinds = [ref[0] for _, _, ref in self.records]
        return dict(png=kinds.count('png'), mat=kinds.count('mat'))
