"""COCO-format detection data read with pycocotools.

COCO category ids (1..90 with gaps) are mapped to contiguous labels ``0..K-1`` in the order of the sorted ids;
``metainfo['cat_ids'][label]`` maps them back (the evaluator writes results with the original ids). Crowd boxes
(``iscrowd=1``) and boxes marked ``ignore`` are kept with ``gt_ignore_flags=True``: COCOeval ignores detections
that match them, and the training loss must not use them as positives.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
from typing import List, Optional, Sequence

import numpy as np

from ..io import read_json
from ..registry import DATASETS
from .detection_base import DetectionDataset


def validate_coco(dataset: dict, ann_file: str, for_evaluation: bool = False) -> None:
    """The checks every reader of COCO ground truth applies (dataset, ``CocoMetric``, ``evaluate --metric coco``).

    Raises ``ValueError`` naming ``ann_file``, the annotation id and the problem: no ``id``, an ``image_id`` not
    in ``images``, a ``category_id`` not in ``categories``, a ``bbox`` that is not 4 finite numbers or has a
    negative width or height. For evaluation (``for_evaluation``) COCOeval also needs ``area`` (>= 0) and reads
    ``iscrowd`` (0 or 1).
    """
    if not isinstance(dataset, dict) or 'images' not in dataset or 'categories' not in dataset:
        raise ValueError(f'{ann_file} is not a COCO annotation file: it needs "images" and "categories"')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(dataset.get(key, []), list):
            raise ValueError(f'{ann_file}: "{key}" must be a list')
    image_ids, cat_ids = set(), set()
    for what, items, ids in (('image', dataset['images'], image_ids), ('category', dataset['categories'], cat_ids)):
        for i, item in enumerate(items):
            if not isinstance(item, dict) or 'id' not in item:
                raise ValueError(f'{ann_file}: {what} entry {i} has no "id"')
            if item['id'] in ids:
                raise ValueError(f'{ann_file}: {what} id {item["id"]} appears twice')
            ids.add(item['id'])
    seen = set()
    for i, ann in enumerate(dataset.get('annotations', [])):
        if not isinstance(ann, dict) or 'id' not in ann:
            raise ValueError(f'{ann_file}: annotation entry {i} has no "id"')
        where = f'{ann_file}: annotation id {ann["id"]}'
        if ann['id'] in seen:
            raise ValueError(f'{where} appears twice')
        seen.add(ann['id'])
        if ann.get('image_id') not in image_ids:
            raise ValueError(f'{where} has image_id {ann.get("image_id")}, which is not in "images"')
        if ann.get('category_id') not in cat_ids:
            raise ValueError(f'{where} has category_id {ann.get("category_id")}, which is not in "categories"')
        box = ann.get('bbox')
        if not isinstance(box, (list, tuple)) or len(box) != 4 or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
            raise ValueError(f'{where} has bbox {box!r}; expected 4 finite numbers [x, y, width, height]')
        if box[2] < 0 or box[3] < 0:
            raise ValueError(f'{where} has a negative width or height in bbox {list(box)}')
        if for_evaluation:
            area = ann.get('area')
            if not isinstance(area, (int, float)) or isinstance(area, bool) or not math.isfinite(area) or area < 0:
                raise ValueError(f'{where} has area {area!r}; COCO evaluation needs a number >= 0')
            if ann.get('iscrowd', 0) not in (0, 1):
                raise ValueError(f'{where} has iscrowd {ann.get("iscrowd")!r}; expected 0 or 1')


def load_coco(ann_file: str, for_evaluation: bool = False):
    """A ``pycocotools.coco.COCO`` index of ``ann_file`` (its chatter silenced), checked by :func:`validate_coco`."""
    from pycocotools.coco import COCO
    dataset = read_json(ann_file, 'COCO annotation file')
    validate_coco(dataset, ann_file, for_evaluation)
    dataset.setdefault('annotations', [])
    if for_evaluation:
        for ann in dataset['annotations']:
            ann.setdefault('iscrowd', 0)  # COCOeval reads it; absent means not a crowd
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


@DATASETS.register_module()
class CocoDetection(DetectionDataset):
    """Images of ``img_dir`` with the boxes of the COCO json ``ann_file``.

    ``classes`` (optional) keeps only the categories with those names (their labels follow that order).
    Images without annotations are kept unless ``filter_empty_gt`` (use it for training).
    """

    def __init__(self, ann_file: str, img_dir: str, pipeline: Optional[Sequence] = None,
                 filter_empty_gt: bool = False, classes: Optional[Sequence[str]] = None, **kwargs) -> None:
        self.coco_file, self.img_dir = ann_file, img_dir
        self.class_subset = list(classes) if classes is not None else None
        super().__init__(pipeline=pipeline, filter_empty_gt=filter_empty_gt, **kwargs)

    def load_records(self) -> List[dict]:
        coco = load_coco(self.coco_file)
        cats = {c['id']: c['name'] for c in coco.dataset['categories']}
        cat_ids = sorted(cats)
        if self.class_subset is not None:
            by_name = {name: cid for cid, name in cats.items()}
            missing = [n for n in self.class_subset if n not in by_name]
            if missing:
                raise ValueError(f'{self.coco_file}: classes {missing} are not among its categories')
            cat_ids = [by_name[n] for n in self.class_subset]
        cat2label = {cid: i for i, cid in enumerate(cat_ids)}
        self._metainfo.update(classes=[cats[c] for c in cat_ids], cat_ids=cat_ids)
        records = []
        for img_id in sorted(coco.getImgIds()):
            info = coco.imgs[img_id]
            boxes, labels, flags, where = [], [], [], []
            for ann in coco.imgToAnns.get(img_id, []):  # checked by validate_coco in load_coco
                if ann['category_id'] not in cat2label:  # not among the selected classes
                    continue
                x, y, w, h = (float(v) for v in ann['bbox'])
                boxes.append([x, y, x + w, y + h])
                labels.append(cat2label[ann['category_id']])
                flags.append(bool(ann.get('iscrowd', 0)) or bool(ann.get('ignore', 0)))
                where.append(f'annotation id {ann.get("id")}')
            records.append(dict(
                img_path=os.path.join(self.img_dir, info['file_name']), img_id=img_id,
                height=info.get('height'), width=info.get('width'),
                bboxes=np.asarray(boxes, np.float32).reshape(-1, 4), labels=np.asarray(labels, np.int64),
                ignore_flags=np.asarray(flags, bool),
                source=f'{self.coco_file} (image {info["file_name"]})', locations=where))
        return records
