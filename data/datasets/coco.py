"""COCO-format detection data read with pycocotools.

COCO category ids (1..90 with gaps) are mapped to contiguous labels ``0..K-1`` in the order of the sorted ids;
``metainfo['cat_ids'][label]`` maps them back (the evaluator writes results with the original ids). Crowd boxes
(``iscrowd=1``) and boxes marked ``ignore`` are kept with ``gt_ignore_flags=True``: COCOeval ignores detections
that match them, and the training loss must not use them as positives.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import List, Optional, Sequence

import numpy as np

from ..io import read_json
from ..registry import DATASETS
from .detection_base import DetectionDataset


def load_coco(ann_file: str):
    """A ``pycocotools.coco.COCO`` index of ``ann_file`` (its chatter silenced); errors name the file."""
    from pycocotools.coco import COCO
    dataset = read_json(ann_file, 'COCO annotation file')
    if not isinstance(dataset, dict) or 'images' not in dataset or 'categories' not in dataset:
        raise ValueError(f'{ann_file} is not a COCO annotation file: it needs "images" and "categories"')
    dataset.setdefault('annotations', [])
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
            for ann in coco.imgToAnns.get(img_id, []):
                if ann['category_id'] not in cats:
                    raise ValueError(f'{self.coco_file}: annotation id {ann.get("id")} has category_id '
                                     f'{ann["category_id"]}, which is not in "categories"')
                if ann['category_id'] not in cat2label:  # not among the selected classes
                    continue
                if len(ann.get('bbox', ())) != 4:
                    raise ValueError(f'{self.coco_file}: annotation id {ann.get("id")} has no 4-number "bbox"')
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
