"""Shared machinery of the detection datasets (COCO, VOC, YOLO-txt): box validation and sample building.

Every dataset parses its annotation format into records ``dict(img_path, img_id, height, width, bboxes,
labels, ignore_flags)`` with boxes as xyxy absolute pixels (float32). :func:`validate_boxes` then applies one set of
rules to all formats, at load time, so bad annotations are reported once and not at every epoch:

* a class id outside ``0..K-1`` is a ``ValueError`` naming the file and line (or object / annotation id);
* non-finite coordinates are a ``ValueError`` naming the file and line;
* boxes reaching outside the image are clipped to it (those kept are counted in ``box_report['clipped']``);
* boxes with zero (or negative) width or height after clipping are dropped (counted in
  ``box_report['dropped']``) and a warning naming the file is logged on the ``mobilevision.data`` logger.

A sample is ``{'img': HxWx3 uint8 RGB, 'gt_bboxes': Nx4 float32, 'gt_labels': N int64, 'gt_ignore_flags': N bool,
'meta': {'img_id', 'file', 'ori_shape', 'img_shape'}}`` (DESIGN.md). ``gt_ignore_flags`` marks COCO crowd boxes
and VOC ``difficult`` objects: the evaluators ignore them, the training loss must not use them as positives.
Images are decoded without applying EXIF orientation, because annotations refer to the stored pixel grid (as
pycocotools and the VOC devkit read them).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.dataset import BaseDataset, Compose

from ..registry import TRANSFORMS

LOGGER = logging.getLogger('mobilevision.data')
MAX_FILE_WARNINGS = 20  # per-file warnings logged before only the summary is printed


def build_transforms(pipeline: Optional[Sequence[Union[dict, Callable]]]) -> Compose:
    """Transforms given as configs are built from ``data.TRANSFORMS`` (so no default scope is needed)."""
    return Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in (pipeline or [])])


def read_image(path: str) -> np.ndarray:
    """HxWx3 uint8 RGB in stored pixel order (EXIF orientation ignored); errors name the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'image file {path} does not exist')
    data = np.fromfile(path, dtype=np.uint8)
    image = (cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None)
    if image is None:
        raise ValueError(f'cannot decode image {path}: the file is empty, truncated or not an image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_size(path: str) -> Tuple[int, int]:
    """(height, width) from the image header (PIL, no decoding); errors name the file."""
    from PIL import Image, UnidentifiedImageError
    if not os.path.isfile(path):
        raise FileNotFoundError(f'image file {path} does not exist')
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f'cannot read image {path}: {err}') from err
    return height, width


def validate_boxes(bboxes: np.ndarray, labels: np.ndarray, ignore_flags: np.ndarray, num_classes: int,
                   height: Optional[int], width: Optional[int], source: str,
                   locations: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Check class ids, clip boxes to the image and drop empty ones.

    ``locations[i]`` says where box ``i`` came from (``'line 3'``, ``'object 2'``...) for error messages.
    Returns ``(bboxes, labels, ignore_flags, num_clipped, num_dropped)``.
    """
    bboxes = np.asarray(bboxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    ignore_flags = np.asarray(ignore_flags, bool).reshape(-1)
    if not len(bboxes) == len(labels) == len(ignore_flags):
        raise ValueError(f'{source}: {len(bboxes)} boxes, {len(labels)} labels, {len(ignore_flags)} ignore flags')

    def where(i: int) -> str:
        return locations[i] if locations is not None else f'box {i}'
    bad_label = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad_label.size:
        i = int(bad_label[0])
        raise ValueError(f'{source}: {where(i)}: class id {int(labels[i])} is out of range 0..{num_classes - 1}')
    not_finite = np.flatnonzero(~np.isfinite(bboxes).all(axis=1))
    if not_finite.size:
        i = int(not_finite[0])
        raise ValueError(f'{source}: {where(i)}: box {bboxes[i].tolist()} has non-finite coordinates')
    changed = np.zeros(len(bboxes), bool)
    if height is not None and width is not None:
        clipped = bboxes.copy()
        clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
        clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
        changed = (clipped != bboxes).any(axis=1)
        bboxes = clipped
    keep = (bboxes[:, 2] > bboxes[:, 0]) & (bboxes[:, 3] > bboxes[:, 1])
    num_clipped, num_dropped = int((changed & keep).sum()), int((~keep).sum())
    return bboxes[keep], labels[keep], ignore_flags[keep], num_clipped, num_dropped


class DetectionDataset(BaseDataset):
    """Base of the detection datasets: an mmengine ``BaseDataset`` (so ``ConcatDataset`` works) of records.

    Subclasses implement :meth:`load_records` returning raw records (boxes not yet validated) and set
    ``self._metainfo = {'classes': [...], 'cat_ids': [...]}`` (or pass it as ``metainfo``). ``filter_empty_gt``
    drops images without any (non-ignored) box, for training. ``box_report`` counts the clipped and dropped
    boxes and lists the files.
    """

    def __init__(self, pipeline: Optional[Sequence[Union[dict, Callable]]] = None, filter_empty_gt: bool = False,
                 metainfo: Optional[dict] = None, test_mode: bool = False, lazy_init: bool = False,
                 serialize_data: bool = True, indices: Optional[Union[int, Sequence[int]]] = None,
                 max_refetch: int = 1000) -> None:
        self.filter_empty_gt = filter_empty_gt
        self.box_report: Dict[str, Any] = dict(clipped=0, dropped=0, files={})
        super().__init__(ann_file='', metainfo=metainfo, data_root='', data_prefix=dict(img_path=''), filter_cfg=None,
                         indices=indices, serialize_data=serialize_data, pipeline=[], test_mode=test_mode,
                         lazy_init=lazy_init, max_refetch=max_refetch)
        self.pipeline = build_transforms(pipeline)

    # ----- to implement -----
    def load_records(self) -> List[dict]:
        """Raw records: ``img_path, img_id, height, width`` (None when unknown), ``bboxes, labels,
        ignore_flags``, ``source`` (the annotation file) and ``locations`` (where each box came from)."""
        raise NotImplementedError

    # ----- mmengine BaseDataset hooks -----
    def load_data_list(self) -> List[dict]:
        raw_records = self.load_records()  # may fill in self._metainfo (COCO reads its categories)
        if not raw_records:
            raise ValueError(f'{type(self).__name__}: no images found ({self._describe()})')
        num_classes = len(self._metainfo['classes'])
        records = []
        for record in raw_records:
            source, locations = record.pop('source'), record.pop('locations', None)
            boxes, labels, flags, clipped, dropped = validate_boxes(
                record['bboxes'], record['labels'], record['ignore_flags'], num_classes, record.get('height'),
                record.get('width'), source, locations)
            record.update(bboxes=boxes, labels=labels, ignore_flags=flags)
            self._count(source, clipped, dropped)
            records.append(record)
        self._log_report()
        return records

    def filter_data(self) -> List[dict]:
        if not self.filter_empty_gt or self.test_mode:
            return self.data_list
        kept = [r for r in self.data_list if (~r['ignore_flags']).any()]
        if not kept:
            raise ValueError(f'{self!r}: none of the {len(self.data_list)} images has a box: filter_empty_gt=True '
                             'would leave an empty dataset')
        return kept

    def get_cat_ids(self, idx: int) -> List[int]:
        return sorted(set(self.get_data_info(idx)['labels'].tolist()))

    def prepare_data(self, idx: int) -> Any:
        transforms = getattr(self.pipeline, 'transforms', [])
        if not any(getattr(t, 'num_extra_samples', 0) for t in transforms):
            return self.pipeline(self.build_sample(self.get_data_info(idx)))
        return self._prepare_with_extra_samples(idx, transforms)

    def _prepare_with_extra_samples(self, idx: int, transforms: Sequence[Callable]) -> Any:
        """Run the pipeline; a transform with ``num_extra_samples = n > 0`` (e.g. ``Mosaic``) first gets ``n``
        random other samples in ``sample['mix_results']``, each read and passed through the stages before it.
        The indices are drawn from NumPy's global generator (seeded per worker by mmengine)."""
        sample = self.build_sample(self.get_data_info(idx))
        for stage, transform in enumerate(transforms):
            extra = int(getattr(transform, 'num_extra_samples', 0) or 0)
            if extra > 0:
                mixes = []
                for j in np.random.randint(0, len(self), size=extra).tolist():
                    mix = self.build_sample(self.get_data_info(j))
                    for before in transforms[:stage]:
                        mix = before(mix)
                        if mix is None:
                            return None
                    mixes.append(mix)
                sample['mix_results'] = mixes
            sample = transform(sample)
            if sample is None:
                return None
        return sample

    # ----- helpers -----
    def build_sample(self, record: dict) -> dict:
        """Read the image and pair it with its boxes; a size that disagrees with the annotation is an error."""
        image = read_image(record['img_path'])
        height, width = image.shape[:2]
        boxes = record['bboxes']
        if record.get('height') is not None and (record['height'], record['width']) != (height, width):
            raise ValueError(f"{record['img_path']}: image is {height}x{width} (HxW) but its annotation says "
                             f"{record['height']}x{record['width']}")
        if record.get('height') is None:  # size unknown at load time: clip now
            boxes, labels, flags, _, _ = validate_boxes(boxes, record['labels'], record['ignore_flags'],
                                                        len(self._metainfo['classes']), height, width,
                                                        record['img_path'])
        else:
            labels, flags = record['labels'], record['ignore_flags']
        return dict(img=image, gt_bboxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                    gt_labels=np.asarray(labels, np.int64), gt_ignore_flags=np.asarray(flags, bool),
                    meta=dict(img_id=record['img_id'], file=record['img_path'], ori_shape=(height, width),
                              img_shape=(height, width)))

    def _count(self, source: str, clipped: int, dropped: int) -> None:
        if not (clipped or dropped):
            return
        self.box_report['clipped'] += clipped
        self.box_report['dropped'] += dropped
        self.box_report['files'][source] = dict(clipped=clipped, dropped=dropped)
        if dropped and len(self.box_report['files']) <= MAX_FILE_WARNINGS:
            LOGGER.warning('%s: dropped %d box(es) with zero area after clipping to the image', source, dropped)

    def _log_report(self) -> None:
        report = self.box_report
        if report['clipped'] or report['dropped']:
            LOGGER.warning('%s: %d box(es) clipped to the image, %d with zero area dropped, in %d file(s)',
                           type(self).__name__, report['clipped'], report['dropped'], len(report['files']))

    def _describe(self) -> str:
        return ', '.join(f'{k}={v}' for k, v in vars(self).items()
                         if k in ('coco_file', 'img_dir', 'devkit_root', 'years', 'splits', 'image_dir'))

    def __repr__(self) -> str:
        if not self._fully_initialized:
            return f'{type(self).__name__}({self._describe()})'
        return (f'{type(self).__name__}(num_images={len(self)}, num_classes={len(self._metainfo["classes"])}, '
                f'clipped={self.box_report["clipped"]}, dropped={self.box_report["dropped"]})')
