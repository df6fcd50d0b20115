"""Monocular depth metrics as Eigen et al. (2014, section 4) define them and FastDepth reports them.

Per image, over the valid pixels (ground truth > 0, optionally <= ``max_depth``, optionally inside the Eigen
crop of a 480x640 frame), with prediction ``p`` and ground truth ``g`` in metres:
RMSE ``sqrt(mean((p-g)^2))``, MAE ``mean|p-g|``, AbsRel ``mean(|p-g|/g)``, log10 ``mean|log10 p - log10 g|``,
delta_k ``mean(max(p/g, g/p) < 1.25^k)`` for k = 1, 2, 3. The dataset value is the mean of the per-image values.
Predictions are clamped to ``[min_depth, max_depth]`` first so the logarithm is defined.
"""
from __future__ import annotations

import argparse
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ..registry import METRICS, OFFLINE_SCORERS
from .offline import match_by_stem, read_npy, squeeze_to

METRIC_NAMES = ('RMSE', 'MAE', 'AbsRel', 'log10', 'delta1', 'delta2', 'delta3')
# Eigen et al. (2014)'s evaluation crop of a 480x640 NYU frame: rows [45, 471), columns [41, 601)
EIGEN_CROP = (45, 471, 41, 601)
EIGEN_FRAME = (480, 640)


def eigen_crop_mask(shape: Tuple[int, int]) -> np.ndarray:
    """The Eigen crop as a boolean mask; for frames other than 480x640 the box is scaled proportionally."""
    h, w = shape
    top, bottom, left, right = EIGEN_CROP
    sy, sx = h / EIGEN_FRAME[0], w / EIGEN_FRAME[1]
    mask = np.zeros((h, w), bool)
    mask[int(round(top * sy)):int(round(bottom * sy)), int(round(left * sx)):int(round(right * sx))] = True
    return mask


def valid_mask(gt: np.ndarray, max_depth: Optional[float] = None, eigen_crop: bool = False) -> np.ndarray:
    mask = np.isfinite(gt) & (gt > 0)
    if max_depth is not None:
        mask &= gt <= max_depth
    if eigen_crop:
        mask &= eigen_crop_mask(gt.shape)
    return mask


def depth_errors(pred: np.ndarray, gt: np.ndarray, max_depth: Optional[float] = None, eigen_crop: bool = False,
                 min_depth: float = 1e-3, where: str = 'depth map') -> Dict[str, float]:
    """The seven metrics of one prediction/ground-truth pair (HxW arrays in metres)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f'{where}: prediction {pred.shape} and ground truth {gt.shape} must be HxW of one size')
    mask = valid_mask(gt, max_depth, eigen_crop)
    if not mask.any():
        raise ValueError(f'{where}: no valid ground-truth pixel (gt > 0'
                         f'{f", <= {max_depth}" if max_depth is not None else ""}'
                         f'{", inside the Eigen crop" if eigen_crop else ""})')
    g = gt[mask]
    p = np.clip(np.nan_to_num(pred[mask], nan=min_depth), min_depth, max_depth if max_depth is not None else np.inf)
    diff = p - g
    ratio = np.maximum(p / g, g / p)
    return dict(RMSE=float(np.sqrt(np.mean(diff ** 2))), MAE=float(np.mean(np.abs(diff))),
                AbsRel=float(np.mean(np.abs(diff) / g)), log10=float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
                delta1=float(np.mean(ratio < 1.25)), delta2=float(np.mean(ratio < 1.25 ** 2)),
                delta3=float(np.mean(ratio < 1.25 ** 3)))


def average(records: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """Mean of per-image metrics (the papers' convention)."""
    if not records:
        raise ValueError('no images were scored')
    return {k: float(np.mean([r[k] for r in records])) for k in METRIC_NAMES}


@METRICS.register_module()
class DepthMetric(BaseMetric):
    """RMSE, MAE, AbsRel, log10 and delta1-3 of the predicted depth against the ground truth.

    ``resolution='input'`` (FastDepth's protocol: 224x224) scores ``sample['gt_depth']`` (as transformed by the
    pipeline) against the prediction of its size, ``result['depth_input']`` (the network's frame) or
    ``result['depth']``. ``resolution='original'`` scores ``result['depth']`` (original image size) against
    ``sample['gt_depth_ori']`` (kept by the depth transforms with ``keep_original=True``; else ``gt_depth``),
    the protocol of the Eigen crop on 480x640 frames.
    """

    default_prefix = 'depth'

    def __init__(self, max_depth: Optional[float] = None, eigen_crop: bool = False, min_depth: float = 1e-3,
                 resolution: str = 'input', collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if resolution not in ('input', 'original'):
            raise ValueError(f"resolution must be 'input' or 'original', got {resolution!r}")
        self.max_depth, self.eigen_crop, self.min_depth = max_depth, eigen_crop, min_depth
        self.resolution = resolution

    def process(self, data_batch: Sequence[dict], data_samples: Sequence[dict]) -> None:
        for sample, result in zip(data_batch, data_samples):
            meta = sample.get('meta', {})
            where = str(meta.get('file') or meta.get('img_id') or 'sample')
            if 'gt_depth' not in sample:
                raise KeyError(f'{where}: the sample has no gt_depth to score against')
            gt = np.asarray(sample['gt_depth_ori'] if self.resolution == 'original' and 'gt_depth_ori' in sample
                            else sample['gt_depth'])
            keys = ('depth',) if self.resolution == 'original' else ('depth_input', 'depth')
            candidates = [result[k] for k in keys if k in result]
            pred = next((np.asarray(c) for c in candidates if np.shape(c) == gt.shape), None)
            if pred is None:
                raise ValueError(f'{where}: no predicted depth of the ground-truth size {gt.shape}; got '
                                 f'{[np.shape(c) for c in candidates]}')
            record = depth_errors(pred, gt, self.max_depth, self.eigen_crop, self.min_depth, where)
            record['name'] = meta.get('img_id')
            self.results.append(record)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        metrics = average(results)
        MMLogger.get_current_instance().info(
            f'depth metrics over {len(results)} images: ' + '  '.join(f'{k}={v:.4f}' for k, v in metrics.items()))
        return metrics


@OFFLINE_SCORERS.register_module(name='depth')
class DepthScorer:
    """Depth metrics of ``.npy`` predictions (metres) against ``.npy`` ground truth, matched by file stem."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--pred-dir', required=True, help='folder of predicted depth maps (.npy, metres)')
        parser.add_argument('--gt-dir', required=True, help='folder of ground-truth depth maps (.npy, metres, 0 = invalid)')
        parser.add_argument('--max-depth', type=float, default=None, help='ignore ground truth beyond this (e.g. 10)')
        parser.add_argument('--min-depth', type=float, default=1e-3, help='predictions are clamped to at least this')
        parser.add_argument('--eigen-crop', action='store_true', help='score inside the Eigen crop only')

    @staticmethod
    def score(args: argparse.Namespace) -> dict:
        per_image = {}
        for pred_path, gt_path in match_by_stem(args.pred_dir, args.gt_dir, ('.npy',)):
            gt = read_npy(gt_path, 'ground-truth depth')
            gt = gt.squeeze() if gt.ndim > 2 else gt  # 1xHxW ground truth is an HxW map
            pred = squeeze_to(read_npy(pred_path, 'predicted depth'), gt.shape, str(pred_path))
            per_image[pred_path.stem] = depth_errors(pred, gt, getattr(args, 'max_depth', None),
                                                   getattr(args, 'eigen_crop', False),
                                                   getattr(args, 'min_depth', 1e-3), where=str(pred_path))
        return dict(average(list(per_image.values())), num_images=len(per_image), per_image=per_image)
