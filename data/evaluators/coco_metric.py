"""COCO box detection metric: the 12 numbers of ``pycocotools.cocoeval.COCOeval.summarize``.

The numbers are pycocotools' own (we only build its inputs): AP at IoU 0.50:0.95, 0.50, 0.75, AP small / medium /
large, AR with 1, 10, 100 detections, AR small / medium / large. Contiguous labels are mapped back to COCO category
ids with the dataset's ``metainfo['cat_ids']``; results are written as a COCO results json
(``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``). The ground truth is the annotation file
(``ann_file``, what published tables use: real ``area`` and ``iscrowd``) or, without one, the boxes of the
evaluated samples (``area = w * h``, ignore flags as ``iscrowd``).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ..datasets.coco import load_coco
from .coco_ids import resolve_image_ids
from ..io import read_json
from ..registry import METRICS, OFFLINE_SCORERS

COCO_METRIC_NAMES = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
                     'AR_1', 'AR_10', 'AR_100', 'AR_s', 'AR_m', 'AR_l')


def to_numpy(value: Any, dtype=None) -> np.ndarray:
    """Tensors (any device) and sequences to NumPy."""
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def xyxy_to_coco_results(image_id: Any, bboxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                         cat_ids: Sequence[int]) -> List[dict]:
    """Detections of one image as COCO result dicts (``bbox`` is ``[x, y, w, h]``)."""
    bboxes = np.asarray(bboxes, np.float64).reshape(-1, 4)
    out = []
    for box, score, label in zip(bboxes, np.asarray(scores, np.float64).reshape(-1),
                                 np.asarray(labels, np.int64).reshape(-1)):
        if not 0 <= label < len(cat_ids):
            raise ValueError(f'image {image_id}: predicted label {label} has no category id '
                             f'({len(cat_ids)} categories)')
        out.append(dict(image_id=image_id, category_id=int(cat_ids[label]),
                        bbox=[float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                        score=float(score)))
    return out


def coco_evaluate(coco_gt, detections: List[dict], img_ids: Optional[Sequence] = None) -> Tuple[np.ndarray, str]:
    """``(stats, summary)``: COCOeval's 12 ``stats`` for ``bbox`` and its printed summary.

    ``img_ids`` restricts the evaluation to those images (default: every image of ``coco_gt``, as COCOeval does).
    With no detections at all every AP/AR is 0 where ground truth exists (pycocotools' loadRes cannot take an
    empty list, so an empty result set is built directly).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        if detections:
            try:
                coco_dt = coco_gt.loadRes([dict(d) for d in detections])
            except AssertionError as err:
                raise ValueError('detections name image ids that are not in the ground truth') from err
        else:
            coco_dt = COCO()
            coco_dt.dataset = dict(images=list(coco_gt.dataset['images']),
                                   categories=list(coco_gt.dataset['categories']), annotations=[])
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType='bbox')
        if img_ids is not None:
            evaluator.params.imgIds = sorted(img_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    summary = '\n'.join(line for line in buffer.getvalue().splitlines() if line.lstrip().startswith('Average'))
    return np.asarray(evaluator.stats, np.float64), summary


def coco_gt_from_samples(records: List[dict], cat_ids: Sequence[int], classes: Sequence[str]):
    """A pycocotools index of the ground truth carried by evaluated samples (no annotation file)."""
    from pycocotools.coco import COCO
    images, annotations = [], []
    for rec in records:
        height, width = rec['ori_shape'][:2]
        images.append(dict(id=rec['img_id'], width=int(width), height=int(height), file_name=str(rec['file'])))
        for box, label, ignore in zip(rec['gt_bboxes'], rec['gt_labels'], rec['gt_ignore_flags']):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append(dict(id=len(annotations) + 1, image_id=rec['img_id'],
                                    category_id=int(cat_ids[int(label)]), bbox=[float(box[0]), float(box[1]), w, h],
                                    area=w * h, iscrowd=int(bool(ignore))))
    coco = COCO()
    coco.dataset = dict(images=images, annotations=annotations,
                        categories=[dict(id=int(c), name=str(n)) for c, n in zip(cat_ids, classes)])
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def rescale_to_original(boxes: np.ndarray, meta: dict) -> np.ndarray:
    """Boxes of a resized sample (``meta['img_shape']``) back to ``meta['ori_shape']`` pixels (through the exact
    inverse of a letterbox when ``meta`` records its ``pad`` and ``scale_factor``)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    if 'pad' in meta and 'scale_factor' in meta:
        from ..transforms.letterbox import letterbox_to_original
        return letterbox_to_original(boxes, meta)
    if 'img_shape' in meta and tuple(meta['img_shape'][:2]) != tuple(meta['ori_shape'][:2]):
        (ih, iw), (oh, ow) = meta['img_shape'][:2], meta['ori_shape'][:2]
        boxes[:, 0::2] *= ow / iw
        boxes[:, 1::2] *= oh / ih
    return boxes


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO box AP/AR through pycocotools; keys ``coco/bbox_mAP``, ``coco/bbox_mAP_50`` ... ``coco/bbox_AR_l``.

    Args:
        ann_file: COCO json of the evaluated images (recommended; its categories give the label -> id map when the
            dataset metainfo has none). Without it the ground truth comes from the samples' ``gt_*`` keys, scaled
            from ``meta['img_shape']`` back to ``meta['ori_shape']`` (right for resize-only test pipelines).
        outfile_prefix: write ``<prefix>.bbox.json`` (COCO results); a temporary file is used otherwise.
        format_only: only write the results json (e.g. for the test-dev server) and return no numbers.
    """
    default_prefix = 'coco'

    def __init__(self, ann_file: Optional[str] = None, outfile_prefix: Optional[str] = None,
                 format_only: bool = False, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and outfile_prefix is None:
            raise ValueError('format_only=True needs outfile_prefix to write the results to')
        self.ann_file, self.outfile_prefix, self.format_only = ann_file, outfile_prefix, format_only
        self._coco_gt = load_coco(ann_file, for_evaluation=True) if ann_file else None

    def process(self, data_batch: Sequence[dict], data_samples: Sequence[dict]) -> None:
        batch = list(data_batch) if data_batch is not None else [{}] * len(data_samples)
        if len(batch) != len(data_samples):
            raise ValueError(f'{len(data_samples)} predictions for a batch of {len(batch)} samples')
        for sample, pred in zip(batch, data_samples):
            meta = dict(sample.get('meta', {}))
            meta.update(pred.get('meta', {}) if isinstance(pred, dict) else {})
            if 'img_id' not in meta:
                raise KeyError('CocoMetric needs meta["img_id"] in each sample (the COCO image id)')
            record = dict(img_id=meta['img_id'], bboxes=to_numpy(pred['bboxes'], np.float64).reshape(-1, 4),
                          scores=to_numpy(pred['scores'], np.float64).reshape(-1),
                          labels=to_numpy(pred['labels'], np.int64).reshape(-1))
            if self._coco_gt is None:
                if 'gt_bboxes' not in sample or 'ori_shape' not in meta:
                    raise KeyError('CocoMetric without ann_file needs gt_bboxes and meta["ori_shape"] in the samples')
                labels = to_numpy(sample['gt_labels'], np.int64).reshape(-1)
                record.update(gt_bboxes=rescale_to_original(to_numpy(sample['gt_bboxes']), meta), gt_labels=labels,
                              gt_ignore_flags=to_numpy(sample.get('gt_ignore_flags', np.zeros(len(labels), bool)),
                                                       bool).reshape(-1),
                              ori_shape=tuple(meta['ori_shape'][:2]), file=meta.get('file', meta['img_id']))
            self.results.append(record)

    def _categories(self, results: List[dict]) -> Tuple[List[int], List[str]]:
        meta = self.dataset_meta or {}
        if 'cat_ids' in meta:
            cat_ids = [int(c) for c in meta['cat_ids']]
            classes = list(meta.get('classes', [str(c) for c in cat_ids]))
        elif self._coco_gt is not None:
            cat_ids = sorted(self._coco_gt.getCatIds())
            classes = [self._coco_gt.cats[c]['name'] for c in cat_ids]
        else:
            classes = list(meta.get('classes', []))
            if not classes:
                top = max([int(r['labels'].max()) for r in results if len(r['labels'])] +
                          [int(r['gt_labels'].max()) for r in results if len(r['gt_labels'])] + [-1])
                classes = [str(i) for i in range(top + 1)]
            cat_ids = list(range(len(classes)))
        if self._coco_gt is not None:
            unknown = sorted(set(cat_ids) - set(self._coco_gt.getCatIds()))
            if unknown:
                raise ValueError(f'{self.ann_file}: category ids {unknown} of the dataset metainfo are not in it')
        return cat_ids, classes

    def results_json(self, results: List[dict]) -> List[dict]:
        """COCO result dicts of the processed predictions (category ids restored)."""
        cat_ids, _ = self._categories(results)
        detections = []
        for r in results:
            detections += xyxy_to_coco_results(r['img_id'], r['bboxes'], r['scores'], r['labels'], cat_ids)
        return detections

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        cat_ids, classes = self._categories(results)
        detections = self.results_json(results)
        if self.outfile_prefix is not None:
            os.makedirs(os.path.dirname(os.path.abspath(self.outfile_prefix)), exist_ok=True)
            path = f'{self.outfile_prefix}.bbox.json'
            with open(path, 'w', encoding='utf-8') as f:
                json.dump(detections, f)
            print_log(f'COCO results written to {path}', logger='current')
        if self.format_only:
            return {}
        coco_gt = self._coco_gt
        if coco_gt is None:
            unique = {r['img_id']: r for r in results}  # distributed samplers may repeat images
            coco_gt = coco_gt_from_samples(list(unique.values()), cat_ids, classes)
        img_ids = sorted({r['img_id'] for r in results})
        stats, summary = coco_evaluate(coco_gt, detections, img_ids)
        print_log('\n' + summary, logger='current')
        return {f'bbox_{name}': float(v) for name, v in zip(COCO_METRIC_NAMES, stats)}


@OFFLINE_SCORERS.register_module(name='coco')
class CocoScorer:
    """``tools/evaluate.py --metric coco --ann-file GT.json RESULTS.json``: the 12 COCO box numbers.

    Returns ``{'bbox': [AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl]}``; pycocotools' summary
    goes to stderr so that ``--json`` output on stdout stays one JSON object.
    """

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument('--ann-file', required=True, help='COCO ground-truth json (instances_*.json)')
        parser.add_argument('results', help='COCO results json: [{"image_id", "category_id", "bbox", "score"}]')

    @staticmethod
    def score(args) -> dict:
        coco_gt = load_coco(args.ann_file, for_evaluation=True)
        detections = load_coco_results(args.results)
        detections = resolve_image_ids(detections, coco_gt.dataset['images'], args.results)  # file stems -> ids
        try:
            stats, summary = coco_evaluate(coco_gt, detections)
        except ValueError as err:
            raise ValueError(f'{args.results}: {err} ({args.ann_file})') from err
        print(summary, file=sys.stderr)
        return {'bbox': [float(v) for v in stats]}


def load_coco_results(path: str) -> List[dict]:
    """A COCO results json as a list of detection dicts; errors name the file and the bad entry."""
    detections = read_json(path, 'COCO results file')
    if not isinstance(detections, list):
        raise ValueError(f'{path}: a COCO results file is a JSON list of detections, got {type(detections).__name__}')
    for i, det in enumerate(detections):
        if not isinstance(det, dict) or not {'image_id', 'category_id', 'bbox', 'score'} <= set(det):
            raise ValueError(f'{path}: entry {i} needs image_id, category_id, bbox and score')
        if len(det['bbox']) != 4:
            raise ValueError(f'{path}: entry {i} has a bbox of {len(det["bbox"])} numbers, expected [x, y, w, h]')
    return detections
