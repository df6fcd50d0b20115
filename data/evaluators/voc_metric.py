"""PASCAL VOC detection AP as the VOC devkit defines it (``VOCevaldet.m``, ``VOCap.m``).

Per class, all detections are sorted by decreasing confidence (a stable sort, as MATLAB's ``sort``); each is
matched to the ground-truth box of its image with the largest IoU; with IoU >= 0.5 (``ovmax >= minoverlap``) it is a
true positive if that box is not ``difficult`` and not yet matched, a false positive if already matched, and
neither if the box is ``difficult``; below 0.5 it is a false positive. Difficult boxes are not counted in the number
of positives. From ``rec = cumsum(tp) / npos`` and ``prec = cumsum(tp) / (cumsum(tp) + cumsum(fp))``:

* VOC2007 11-point AP: the mean over ``t`` in ``0:0.1:1`` of ``max(prec[rec >= t])`` (0 when empty), with the
  ``t`` values MATLAB computes (see ``DEVKIT_11_POINTS``);
* area AP (VOC2010+): the area under the precision envelope (precision made monotone decreasing), summed where
  recall changes.

Boxes are continuous xyxy pixels (the datasets map VOC's 1-based inclusive ``(xmin, ymin, xmax, ymax)`` to
``(xmin - 1, ymin - 1, xmax, ymax)``), so IoUs equal the devkit's ``+1`` pixel-count IoUs. A class without
non-difficult ground truth has AP -1 and is left out of the mean.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ..registry import METRICS, OFFLINE_SCORERS
from .coco_metric import rescale_to_original, to_numpy

AP_MODES = ('11point', 'area')


# The recall levels of the VOC2007 devkit's ``for t=0:0.1:1``, as MATLAB's colon operator evaluates them: the
# first half as ``k * 0.1``, the second as ``1 - (10 - k) * 0.1``. So t(4) is 0.30000000000000004 (a recall of
# exactly 3/10 does not reach it, as in the devkit and its Python ports) while 0.6 and 0.7 are the nearest doubles.
DEVKIT_11_POINTS = tuple([k * 0.1 for k in range(6)] + [1 - (10 - k) * 0.1 for k in range(6, 11)])


def voc_ap(recall: np.ndarray, precision: np.ndarray, mode: str = 'area') -> float:
    """AP of one class from its recall/precision curve (``VOCap.m`` for ``area``, VOC2007 for ``11point``)."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if mode == '11point':
        ap = 0.0
        for t in DEVKIT_11_POINTS:
            reached = recall >= t
            ap += (precision[reached].max() if reached.any() else 0.0) / 11
        return float(ap)
    if mode != 'area':
        raise ValueError(f"mode must be '11point' or 'area', got {mode!r}")
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changed = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[changed] - mrec[changed - 1]) * mpre[changed]))


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0])
    ih = np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1])
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where((iw > 0) & (ih > 0), inter / np.where(union > 0, union, 1.0), -np.inf)


def match_class(detections: Sequence[Tuple[Hashable, float, np.ndarray]],
                ground_truth: Dict[Hashable, Tuple[np.ndarray, np.ndarray]],
                iou_thr: float = 0.5) -> Tuple[np.ndarray, np.ndarray, int]:
    """``(tp, fp, npos)`` of one class, the devkit's matching.

    ``detections``: ``(image key, score, xyxy box)`` in file order; ``ground_truth``: image key ->
    ``(boxes Nx4, difficult N bool)``. ``tp``/``fp`` are per detection, in decreasing score order.
    """
    npos = int(sum(int((~np.asarray(d, bool)).sum()) for _, d in ground_truth.values()))
    scores = np.array([d[1] for d in detections], np.float64)
    order = np.argsort(-scores, kind='stable')
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    matched = {key: np.zeros(len(d), bool) for key, (_, d) in ground_truth.items()}
    for rank, index in enumerate(order):
        key, _, box = detections[index]
        gt_boxes, difficult = ground_truth.get(key, (np.zeros((0, 4)), np.zeros(0, bool)))
        if len(gt_boxes) == 0:
            fp[rank] = 1
            continue
        overlaps = _iou_one_to_many(np.asarray(box, np.float64), np.asarray(gt_boxes, np.float64))
        j = int(np.argmax(overlaps))  # the first box of largest IoU, as the devkit's strict '>' scan
        if overlaps[j] >= iou_thr:
            if not difficult[j]:
                if not matched[key][j]:
                    tp[rank] = 1
                    matched[key][j] = True
                else:
                    fp[rank] = 1
        else:
            fp[rank] = 1
    return tp, fp, npos


def class_ap(detections, ground_truth, iou_thr: float = 0.5) -> Dict[str, float]:
    """``{'11point': AP, 'area': AP}`` of one class (-1 without non-difficult ground truth)."""
    tp, fp, npos = match_class(detections, ground_truth, iou_thr)
    if npos == 0:
        return {mode: -1.0 for mode in AP_MODES}
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    recall = ctp / npos
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).tiny)
    return {'11point': voc_ap(recall, precision, '11point'), 'area': voc_ap(recall, precision, 'area')}


def evaluate_voc(gts: Dict[Hashable, dict], dets: Dict[Hashable, dict], classes: Sequence[str],
                 iou_thr: float = 0.5) -> dict:
    """Per-class AP and mAP (both definitions) of detections against ground truth.

    ``gts[key] = {'bboxes', 'labels', 'difficult'}``, ``dets[key] = {'bboxes', 'scores', 'labels'}`` (detections
    of an image absent from ``gts`` are false positives).
    """
    per_class_gt: Dict[int, Dict[Hashable, Tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for key, g in gts.items():
        labels = np.asarray(g['labels'], np.int64).reshape(-1)
        boxes = np.asarray(g['bboxes'], np.float64).reshape(-1, 4)
        difficult = np.asarray(g['difficult'], bool).reshape(-1)
        for c in range(len(classes)):
            sel = labels == c
            if sel.any():
                per_class_gt[c][key] = (boxes[sel], difficult[sel])
    per_class_det: Dict[int, List] = defaultdict(list)
    for key, d in dets.items():
        for box, score, label in zip(np.asarray(d['bboxes'], np.float64).reshape(-1, 4),
                                     np.asarray(d['scores'], np.float64).reshape(-1),
                                     np.asarray(d['labels'], np.int64).reshape(-1)):
            if not 0 <= label < len(classes):
                raise ValueError(f'image {key}: predicted label {label} is not one of {len(classes)} classes')
            per_class_det[int(label)].append((key, float(score), box))
    ap = {mode: {} for mode in AP_MODES}
    for c, name in enumerate(classes):
        result = class_ap(per_class_det.get(c, []), per_class_gt.get(c, {}), iou_thr)
        for mode in AP_MODES:
            ap[mode][name] = result[mode]
    out = {}
    for mode in AP_MODES:
        valid = [v for v in ap[mode].values() if v >= 0]
        out[f'mAP_{mode}'] = float(np.mean(valid)) if valid else -1.0
        out[f'AP_{mode}'] = ap[mode]
    return out


def write_devkit_detections(dets: Dict[Hashable, dict], classes: Sequence[str], out_dir: str,
                            split: str = 'test') -> List[str]:
    """Write ``comp4_det_<split>_<class>.txt`` files (``id score xmin ymin xmax ymax``, 1-based devkit boxes)."""
    os.makedirs(out_dir, exist_ok=True)
    files = {c: open(os.path.join(out_dir, f'comp4_det_{split}_{name}.txt'), 'w', encoding='utf-8')
             for c, name in enumerate(classes)}
    try:
        for key, d in dets.items():
            for box, score, label in zip(np.asarray(d['bboxes'], np.float64).reshape(-1, 4),
                                         np.asarray(d['scores'], np.float64).reshape(-1),
                                         np.asarray(d['labels'], np.int64).reshape(-1)):
                files[int(label)].write(f'{key} {score:.6f} {box[0] + 1:.2f} {box[1] + 1:.2f} '
                                        f'{box[2]:.2f} {box[3]:.2f}\n')
    finally:
        for f in files.values():
            f.close()
    return [f.name for f in files.values()]


@METRICS.register_module()
class VOCMetric(BaseMetric):
    """VOC AP at IoU ``iou_thr`` with both devkit definitions; keys ``voc/mAP`` (``eval_mode``),
    ``voc/mAP_11point``, ``voc/mAP_area`` and ``voc/AP_<class>`` (``eval_mode``).

    Ground truth comes from the samples (``gt_bboxes``, ``gt_labels``, ``gt_ignore_flags`` = difficult), scaled
    from ``meta['img_shape']`` back to ``meta['ori_shape']`` (right for resize-only test pipelines). ``outfile_dir``
    also writes the devkit's ``comp4_det_<split>_<class>.txt`` files.
    """
    default_prefix = 'voc'

    def __init__(self, iou_thr: float = 0.5, eval_mode: str = '11point', outfile_dir: Optional[str] = None,
                 split: str = 'test', collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        eval_mode = {'11points': '11point', 'area': 'area'}.get(eval_mode, eval_mode)  # mmdet spells '11points'
        if eval_mode not in AP_MODES:
            raise ValueError(f'eval_mode must be one of {AP_MODES}, got {eval_mode!r}')
        self.iou_thr, self.eval_mode, self.outfile_dir, self.split = iou_thr, eval_mode, outfile_dir, split

    def process(self, data_batch: Sequence[dict], data_samples: Sequence[dict]) -> None:
        if len(data_batch) != len(data_samples):
            raise ValueError(f'{len(data_samples)} predictions for a batch of {len(data_batch)} samples')
        for sample, pred in zip(data_batch, data_samples):
            meta = sample.get('meta', {})
            if 'gt_bboxes' not in sample:
                raise KeyError(f"VOCMetric needs gt_bboxes in the samples ({meta.get('file')})")
            labels = to_numpy(sample['gt_labels'], np.int64).reshape(-1)
            self.results.append(dict(
                img_id=meta.get('img_id', meta.get('file')),
                gt=dict(bboxes=rescale_to_original(to_numpy(sample['gt_bboxes']), meta), labels=labels,
                        difficult=to_numpy(sample.get('gt_ignore_flags', np.zeros(len(labels), bool)),
                                           bool).reshape(-1)),
                det=dict(bboxes=to_numpy(pred['bboxes'], np.float64).reshape(-1, 4),
                         scores=to_numpy(pred['scores'], np.float64).reshape(-1),
                         labels=to_numpy(pred['labels'], np.int64).reshape(-1))))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        classes = list((self.dataset_meta or {}).get('classes', []))
        if not classes:
            top = max([int(r['gt']['labels'].max()) for r in results if len(r['gt']['labels'])] +
                      [int(r['det']['labels'].max()) for r in results if len(r['det']['labels'])] + [-1])
            classes = [f'class_{i}' for i in range(top + 1)]
        gts = {r['img_id']: r['gt'] for r in results}
        dets = {r['img_id']: r['det'] for r in results}
        if self.outfile_dir is not None:
            write_devkit_detections(dets, classes, self.outfile_dir, self.split)
        scores = evaluate_voc(gts, dets, classes, self.iou_thr)
        lines = [f'{"class":>14} {"AP 11-point":>12} {"AP area":>9}']
        lines += [f'{name:>14} {scores["AP_11point"][name]:12.4f} {scores["AP_area"][name]:9.4f}' for name in classes]
        lines.append(f'{"mAP":>14} {scores["mAP_11point"]:12.4f} {scores["mAP_area"]:9.4f}')
        print_log('\n' + '\n'.join(lines), logger='current')
        out = {'mAP': scores[f'mAP_{self.eval_mode}'], 'mAP_11point': scores['mAP_11point'],
               'mAP_area': scores['mAP_area']}
        out.update({f'AP_{name}': v for name, v in scores[f'AP_{self.eval_mode}'].items()})
        return out


def read_devkit_detections(path: str, known_ids: set) -> List[Tuple[str, float, np.ndarray]]:
    """``(image id, score, continuous xyxy box)`` of one ``comp4_det`` file, in file order."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'detection file {path} does not exist (one file per class is expected)')
    out = []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise ValueError(f'{path}: line {number}: expected "id score xmin ymin xmax ymax", '
                                 f'got {len(fields)} fields')
            try:
                score, x1, y1, x2, y2 = (float(v) for v in fields[1:])
            except ValueError as err:
                raise ValueError(f'{path}: line {number}: not a number: {line.strip()!r}') from err
            if fields[0] not in known_ids:
                raise ValueError(f'{path}: line {number}: image {fields[0]!r} is not in the image set')
            out.append((fields[0], score, np.array([x1 - 1, y1 - 1, x2, y2], np.float64)))
    return out


@OFFLINE_SCORERS.register_module(name='voc')
class VOCScorer:
    """``tools/evaluate.py --metric voc --devkit VOCdevkit/VOC2007 --split test --det-dir DIR``.

    Reads ``ImageSets/Main/<split>.txt``, ``Annotations/<id>.xml`` and ``DIR/comp4_det_<split>_<class>.txt``
    (``id score xmin ymin xmax ymax``, 1-based) and returns per-class AP and mAP with both definitions.
    """

    @staticmethod
    def add_arguments(parser) -> None:
        parser.add_argument('--devkit', required=True, help='a VOC year folder, e.g. VOCdevkit/VOC2007')
        parser.add_argument('--split', default='test', help='image set of ImageSets/Main (default: test)')
        parser.add_argument('--det-dir', required=True, help='folder of comp4_det_<split>_<class>.txt files')
        parser.add_argument('--iou-thr', type=float, default=0.5, help='IoU for a true positive (default 0.5)')
        parser.add_argument('--classes', nargs='+', default=None, help='class names (default: the 20 VOC classes)')

    @staticmethod
    def score(args) -> dict:
        from ..datasets.voc import VOC_CLASSES, parse_voc_xml, read_image_set
        classes = list(args.classes or VOC_CLASSES)
        label_of = {name: i for i, name in enumerate(classes)}
        ids = read_image_set(args.devkit, args.split)
        per_class_gt: Dict[int, Dict[Hashable, Tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
        for image_id in ids:
            xml = os.path.join(args.devkit, 'Annotations', f'{image_id}.xml')
            _, _, objects = parse_voc_xml(xml)
            for k, obj in enumerate(objects, 1):
                if obj['name'] not in label_of:
                    raise ValueError(f'{xml}: object {k} has class {obj["name"]!r}, not one of {len(classes)} classes')
                x1, y1, x2, y2 = obj['bbox']
                class_gt = per_class_gt[label_of[obj['name']]]
                boxes, difficult = class_gt.get(image_id, (np.zeros((0, 4)), np.zeros(0, bool)))
                class_gt[image_id] = (np.vstack([boxes, [x1 - 1, y1 - 1, x2, y2]]),
                                      np.append(difficult, obj['difficult']))
        known = set(ids)
        ap = {mode: {} for mode in AP_MODES}
        for c, name in enumerate(classes):
            dets = read_devkit_detections(os.path.join(args.det_dir, f'comp4_det_{args.split}_{name}.txt'), known)
            result = class_ap(dets, per_class_gt.get(c, {}), args.iou_thr)
            for mode in AP_MODES:
                ap[mode][name] = result[mode]
        out: dict = {}
        for mode in AP_MODES:
            valid = [v for v in ap[mode].values() if v >= 0]
            out[f'mAP_{mode}'] = float(np.mean(valid)) if valid else -1.0
        out.update(AP_11point=ap['11point'], AP_area=ap['area'], num_images=len(ids))
        return out
