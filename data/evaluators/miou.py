"""Semantic-segmentation scores from one confusion matrix accumulated over the whole dataset.

As the PASCAL VOC devkit and Cityscapes benchmark compute them (not averaged per image): with ``C[g, p]`` the
number of pixels of ground-truth class ``g`` predicted as ``p`` (pixels whose ground truth is ``ignore_index``
skipped), IoU_k = C[k,k] / (sum_p C[k,p] + sum_g C[g,k] - C[k,k]), aAcc = trace(C) / sum(C), mAcc = mean_k
C[k,k] / sum_p C[k,p], mIoU = mean_k IoU_k. Classes that appear neither in the ground truth nor in the
predictions (0/0) are left out of the means (NaN in the per-class table). All scores are fractions in [0, 1].
"""
from __future__ import annotations

import argparse
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ..registry import METRICS, OFFLINE_SCORERS
from .offline import match_by_stem


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int = 255,
                     source: str = 'prediction') -> np.ndarray:
    """``num_classes x num_classes`` int64 counts, rows = ground truth, columns = prediction."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'{source}: prediction size {pred.shape} differs from ground truth {gt.shape}')
    valid = gt != ignore_index
    g, p = gt[valid].astype(np.int64), pred[valid].astype(np.int64)
    if g.size and (g.min() < 0 or g.max() >= num_classes):
        bad = np.unique(g[(g < 0) | (g >= num_classes)])
        raise ValueError(f'{source}: ground-truth labels {bad[:10].tolist()} are outside 0..{num_classes - 1} and '
                         f'{ignore_index}')
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        bad = np.unique(p[(p < 0) | (p >= num_classes)])
        raise ValueError(f'{source}: predicted labels {bad[:10].tolist()} are outside 0..{num_classes - 1}')
    return np.bincount(g * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def scores_from_confusion(matrix: np.ndarray, class_names: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """aAcc, mAcc, mIoU and per-class IoU/Acc from a confusion matrix (see the module docstring)."""
    m = np.asarray(matrix, np.float64)
    diag, gt_total, pred_total = np.diag(m), m.sum(1), m.sum(0)
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = diag / (gt_total + pred_total - diag)
        acc = diag / gt_total
    total = m.sum()
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(m))]
    out: Dict[str, object] = dict(
        aAcc=float(diag.sum() / total) if total else float('nan'),
        mAcc=float(np.nanmean(acc)) if np.isfinite(acc).any() else float('nan'),
        mIoU=float(np.nanmean(iou)) if np.isfinite(iou).any() else float('nan'))
    out['IoU'] = {n: float(v) for n, v in zip(names, iou)}
    out['Acc'] = {n: float(v) for n, v in zip(names, acc)}
    return out


@METRICS.register_module()
class IoUMetric(BaseMetric):
    """mIoU / aAcc / mAcc over a dataset; ``process`` reads ``gt_seg`` from the batch and ``seg`` from results.

    Logs the per-class IoU table and returns ``aAcc``, ``mAcc``, ``mIoU`` and ``IoU.<class>`` entries.
    """

    default_prefix = ''

    def __init__(self, num_classes: int, ignore_index: int = 255, class_names: Optional[Sequence[str]] = None,
                 per_class: bool = True, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f'{len(class_names)} class names for {num_classes} classes')
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.class_names, self.per_class = class_names, per_class

    def process(self, data_batch: Sequence[dict], data_samples: Sequence[dict]) -> None:
        for sample, result in zip(data_batch, data_samples):
            source = str((sample.get('meta') or {}).get('seg_file') or (sample.get('meta') or {}).get('file'))
            self.results.append(confusion_matrix(result['seg'], sample['gt_seg'], self.num_classes,
                                                 self.ignore_index, source))

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        matrix = np.sum(results, axis=0) if results else np.zeros((self.num_classes,) * 2, np.int64)
        scores = scores_from_confusion(matrix, self.class_names)
        logger = MMLogger.get_current_instance()
        logger.info('per-class IoU: ' + ', '.join(f'{k}={v:.4f}' for k, v in scores['IoU'].items()))
        metrics = {k: scores[k] for k in ('aAcc', 'mAcc', 'mIoU')}
        if self.per_class:
            metrics.update({f'IoU.{k}': v for k, v in scores['IoU'].items()})
        return metrics


@OFFLINE_SCORERS.register_module(name='miou')
class MIoUScorer:
    """mIoU of folders of label-map PNGs (pixel value = class index, ``--ignore-index`` in the ground truth)."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--pred-dir', required=True, help='folder of predicted label-map PNGs')
        parser.add_argument('--gt-dir', required=True, help='folder of ground-truth label-map PNGs (same stems)')
        parser.add_argument('--num-classes', type=int, required=True, help='number of classes K (labels 0..K-1)')
        parser.add_argument('--ignore-index', type=int, default=255, help='ground-truth label to skip (255)')

    @staticmethod
    def score(args: argparse.Namespace) -> dict:
        from ..datasets.seg_base import read_label_map
        matrix = np.zeros((args.num_classes, args.num_classes), np.int64)
        pairs = match_by_stem(args.pred_dir, args.gt_dir, ('.png',))
        for pred_path, gt_path in pairs:
            matrix += confusion_matrix(read_label_map(str(pred_path)), read_label_map(str(gt_path)),
                                       args.num_classes, args.ignore_index, str(pred_path))
        scores = scores_from_confusion(matrix)
        return dict(aAcc=scores['aAcc'], mAcc=scores['mAcc'], mIoU=scores['mIoU'], IoU=scores['IoU'],
                    num_images=len(pairs))
