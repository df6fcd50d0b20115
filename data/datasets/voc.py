"""PASCAL VOC detection data: ``VOCdevkit/VOC<year>/{ImageSets/Main/<split>.txt, Annotations/*.xml, JPEGImages}``.

VOC boxes are 1-based inclusive pixel indices (devkit ``VOCreadrecxml``); they become continuous xyxy coordinates
``(xmin - 1, ymin - 1, xmax, ymax)``, so a box's width ``xmax - xmin + 1`` and every IoU equal the devkit's.
``difficult`` objects are kept with ``gt_ignore_flags=True`` (the VOC evaluation ignores them). VOC07+12 is
``years=[2007, 2012]`` (one dataset) or an mmengine ``ConcatDataset`` of two ``VOCDetection``.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..registry import DATASETS
from .detection_base import DetectionDataset

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')


def read_image_set(year_dir: str, split: str) -> List[str]:
    """Image ids listed in ``ImageSets/Main/<split>.txt``; errors name the file."""
    path = os.path.join(year_dir, 'ImageSets', 'Main', f'{split}.txt')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'VOC image set {path} does not exist')
    with open(path, encoding='utf-8') as f:
        return [line.split()[0] for line in f if line.strip()]


def parse_voc_xml(path: str) -> Tuple[Optional[int], Optional[int], List[dict]]:
    """``(height, width, objects)`` of a VOC annotation; each object has ``name, difficult, bbox`` (1-based)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'VOC annotation {path} does not exist')
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f'{path} is not valid XML: {err}') from err
    size = root.find('size')
    height = width = None
    if size is not None and size.findtext('height') and size.findtext('width'):
        height, width = int(float(size.findtext('height'))), int(float(size.findtext('width')))
        if height <= 0 or width <= 0:  # some converted sets write 0: read the size from the image instead
            height = width = None
    objects = []
    for k, obj in enumerate(root.findall('object'), 1):
        box = obj.find('bndbox')
        if box is None:
            raise ValueError(f'{path}: object {k} has no <bndbox>')
        try:
            bbox = [float(box.findtext(t)) for t in ('xmin', 'ymin', 'xmax', 'ymax')]
        except (TypeError, ValueError) as err:
            raise ValueError(f'{path}: object {k} has a malformed <bndbox>: {err}') from err
        objects.append(dict(name=(obj.findtext('name') or '').strip(), bbox=bbox,
                            difficult=int(obj.findtext('difficult') or 0) == 1))
    return height, width, objects


@DATASETS.register_module()
class VOCDetection(DetectionDataset):
    """PASCAL VOC images of ``data_root`` (the ``VOCdevkit`` folder) for ``year`` (or ``years``) and ``split``.

    ``split`` is ``trainval``, ``train``, ``val`` or ``test``; with ``years`` it may be a list of one split per
    year. An object whose name is not in ``classes`` is a ``ValueError`` naming the XML file and object.
    """

    def __init__(self, data_root: str, year: Union[int, str, None] = 2007,
                 split: Union[str, Sequence[str]] = 'trainval', pipeline: Optional[Sequence] = None,
                 years: Optional[Sequence[Union[int, str]]] = None,
                 classes: Sequence[str] = VOC_CLASSES, filter_empty_gt: bool = False, **kwargs) -> None:
        self.devkit_root = data_root
        self.years = [str(y) for y in (years if years is not None else [year])]
        splits = [split] * len(self.years) if isinstance(split, str) else list(split)
        if len(splits) != len(self.years):
            raise ValueError(f'got {len(splits)} splits for {len(self.years)} years: give one split or one per year')
        self.splits = splits
        self.classes = list(classes)
        super().__init__(pipeline=pipeline, filter_empty_gt=filter_empty_gt,
                         metainfo=dict(classes=self.classes, cat_ids=list(range(len(self.classes)))), **kwargs)

    def load_records(self) -> List[dict]:
        label_of = {name: i for i, name in enumerate(self.classes)}
        records = []
        for year, split in zip(self.years, self.splits):
            year_dir = os.path.join(self.devkit_root, f'VOC{year}')
            if not os.path.isdir(year_dir):
                raise FileNotFoundError(f'VOC folder {year_dir} does not exist')
            for name in read_image_set(year_dir, split):
                xml = os.path.join(year_dir, 'Annotations', f'{name}.xml')
                height, width, objects = parse_voc_xml(xml)
                boxes, labels, flags, where = [], [], [], []
                for k, obj in enumerate(objects, 1):
                    if obj['name'] not in label_of:
                        raise ValueError(f'{xml}: object {k} has class {obj["name"]!r}, which is not one of the '
                                         f'{len(self.classes)} classes')
                    x1, y1, x2, y2 = obj['bbox']
                    boxes.append([x1 - 1, y1 - 1, x2, y2])
                    labels.append(label_of[obj['name']])
                    flags.append(obj['difficult'])
                    where.append(f'object {k}')
                records.append(dict(
                    img_path=os.path.join(year_dir, 'JPEGImages', f'{name}.jpg'), img_id=name, year=year,
                    height=height, width=width, bboxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                    labels=np.asarray(labels, np.int64), ignore_flags=np.asarray(flags, bool), source=xml,
                    locations=where))
        return records
