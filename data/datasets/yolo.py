"""YOLO-format detection folders: ``images/<split>/*.jpg`` and ``labels/<split>/<stem>.txt``.

Each label line is ``class cx cy w h`` with the centre and size normalised by the image width/height. Class names
come from ``classes`` or from a YOLO data yaml (``names:`` as a list or an ``{index: name}`` mapping; ``path:``
gives the root when ``data_root`` is not set, and ``train:``/``val:``/``test:`` the image folder of each split).
An empty label file means an image without objects; a missing one is an error unless ``allow_missing_labels``.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

import numpy as np

from ..io import IMAGE_SUFFIXES
from ..registry import DATASETS
from .detection_base import DetectionDataset, image_size


def read_yolo_yaml(path: str) -> dict:
    """The data yaml as a dict with ``names`` turned into a list; errors name the file."""
    import yaml
    if not os.path.isfile(path):
        raise FileNotFoundError(f'YOLO data yaml {path} does not exist')
    with open(path, encoding='utf-8') as f:
        cfg = yaml.safe_load(f)
    if not isinstance(cfg, dict) or 'names' not in cfg:
        raise ValueError(f'{path}: a YOLO data yaml needs a "names" entry (list or index: name mapping)')
    names = cfg['names']
    if isinstance(names, dict):
        keys = sorted(int(k) for k in names)
        if keys != list(range(len(keys))):
            raise ValueError(f'{path}: "names" indices must be 0..{len(keys) - 1}, got {keys}')
        names = [names[k] for k in keys]
    cfg['names'] = [str(n) for n in names]
    return cfg


def parse_yolo_labels(path: str, num_classes: int, height: int, width: int):
    """Boxes (xyxy pixels), labels and line locations of one label file; malformed lines name file and line."""
    boxes, labels, where = [], [], []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 5:
                raise ValueError(f'{path}: line {number}: expected "class cx cy w h", got {len(fields)} fields')
            try:
                cls = float(fields[0])
                cx, cy, w, h = (float(v) for v in fields[1:])
            except ValueError as err:
                raise ValueError(f'{path}: line {number}: not a number: {line.strip()!r}') from err
            if cls != int(cls):
                raise ValueError(f'{path}: line {number}: class id {fields[0]} is not an integer')
            labels.append(int(cls))
            boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
            where.append(f'line {number}')
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64), where


@DATASETS.register_module()
class YOLODetection(DetectionDataset):
    """Images of ``<data_root>/images/<split>`` with their ``labels/<split>/*.txt``; classes from a list or yaml."""

    def __init__(self, data_root: Optional[str] = None, split: str = 'train',
                 classes: Optional[Sequence[str]] = None, data_yaml: Optional[str] = None,
                 pipeline: Optional[Sequence] = None, allow_missing_labels: bool = False,
                 filter_empty_gt: bool = False, **kwargs) -> None:
        image_dir = None
        if data_yaml is not None:
            cfg = read_yolo_yaml(data_yaml)
            classes = list(classes) if classes is not None else cfg['names']
            if data_root is None:
                base = os.path.dirname(os.path.abspath(data_yaml))
                data_root = os.path.normpath(os.path.join(base, str(cfg.get('path', '.'))))
            if isinstance(cfg.get(split), str):
                image_dir = os.path.normpath(os.path.join(data_root, cfg[split]))
        if classes is None:
            raise ValueError('YOLODetection needs the class names: pass classes=[...] or data_yaml=...')
        if data_root is None:
            raise ValueError('YOLODetection needs data_root (or a data_yaml with "path")')
        self.data_root_dir, self.split = data_root, split
        self.image_dir = image_dir or os.path.join(data_root, 'images', split)
        self.label_dir = self._label_dir(self.image_dir)
        self.allow_missing_labels = allow_missing_labels
        self.classes = list(classes)
        super().__init__(pipeline=pipeline, filter_empty_gt=filter_empty_gt,
                         metainfo=dict(classes=self.classes, cat_ids=list(range(len(self.classes)))), **kwargs)

    @staticmethod
    def _label_dir(image_dir: str) -> str:
        """The YOLO convention: the last ``images`` folder of the path becomes ``labels``."""
        parts = os.path.normpath(image_dir).split(os.sep)
        if 'images' not in parts:
            raise ValueError(f'YOLO image folder {image_dir} has no "images" component to map to "labels"')
        i = len(parts) - 1 - parts[::-1].index('images')
        parts[i] = 'labels'
        return os.sep.join(parts)

    def load_records(self) -> List[dict]:
        if not os.path.isdir(self.image_dir):
            raise FileNotFoundError(f'YOLO image folder {self.image_dir} does not exist')
        files = sorted(f for f in os.listdir(self.image_dir) if f.lower().endswith(IMAGE_SUFFIXES))
        if not files:
            raise FileNotFoundError(f'no images found in {self.image_dir}')
        records = []
        for name in files:
            img_path = os.path.join(self.image_dir, name)
            height, width = image_size(img_path)
            stem = os.path.splitext(name)[0]
            label_path = os.path.join(self.label_dir, f'{stem}.txt')
            if os.path.isfile(label_path):
                boxes, labels, where = parse_yolo_labels(label_path, len(self.classes), height, width)
            elif self.allow_missing_labels:
                boxes, labels, where = np.zeros((0, 4), np.float32), np.zeros(0, np.int64), []
            else:
                raise FileNotFoundError(f'label file {label_path} for image {img_path} does not exist '
                                        '(pass allow_missing_labels=True to treat such images as having no objects)')
            records.append(dict(img_path=img_path, img_id=stem, height=height, width=width, bboxes=boxes,
                                labels=labels, ignore_flags=np.zeros(len(labels), bool), source=label_path,
                                locations=where))
        return records
