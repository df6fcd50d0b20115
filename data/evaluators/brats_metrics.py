"""BraTS evaluation: Dice and 95% Hausdorff distance per region (ET = {4}, TC = {1, 4}, WT = {1, 2, 4}), per case.

Conventions (BraTS challenge; Bakas et al., 2018, section "Evaluation"):
- Dice ``2|P & G| / (|P| + |G|)``; HD95 in mm from the voxel spacing, computed as in MedPy's ``hd95``: surface
  voxels are the mask minus its erosion (6-connectivity, voxels at the volume border count as surface), the
  distances from each surface voxel of one mask to the nearest surface voxel of the other are pooled in both
  directions and their 95th percentile is taken.
- Empty ground truth: both empty gives Dice 1 and HD95 0; exactly one empty gives Dice 0 and HD95 equal to the
  volume diagonal ``sqrt(sum((shape * spacing) ** 2))`` (the worst possible distance; the challenge used 373.13 mm,
  the diagonal of its 240 x 240 x 155 mm volumes).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from scipy import ndimage

from ..registry import METRICS, OFFLINE_SCORERS

REGIONS: Dict[str, Tuple[int, ...]] = {'ET': (4,), 'TC': (1, 4), 'WT': (1, 2, 4)}


def region_masks(labels: np.ndarray) -> Dict[str, np.ndarray]:
    """Boolean masks of ET, TC, WT from a BraTS label map (3 is treated as 4, BraTS 2023)."""
    labels = np.asarray(labels)
    labels = np.where(labels == 3, 4, labels)
    return {name: np.isin(labels, values) for name, values in REGIONS.items()}


def dice(prediction: np.ndarray, target: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty."""
    p, t = np.asarray(prediction, bool), np.asarray(target, bool)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(p, t).sum()) / total


def _surface(mask: np.ndarray) -> np.ndarray:
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1), iterations=1)
    return mask & ~eroded


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distances (mm) from every surface voxel of ``a`` to the nearest surface voxel of ``b`` (both non-empty)."""
    to_b = ndimage.distance_transform_edt(~_surface(b), sampling=spacing)
    return to_b[_surface(a)]


def volume_diagonal(shape: Sequence[int], spacing: Sequence[float]) -> float:
    return float(np.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing))))


def hd95(prediction: np.ndarray, target: np.ndarray, spacing: Optional[Sequence[float]] = None) -> float:
    """95th percentile of the pooled symmetric surface distances, in mm; the BraTS values when a mask is empty."""
    p, t = np.asarray(prediction, bool), np.asarray(target, bool)
    if p.shape != t.shape:
        raise ValueError(f'HD95 needs masks of one shape, got {p.shape} and {t.shape}')
    spacing = tuple(spacing) if spacing is not None else (1.0,) * p.ndim
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return volume_diagonal(p.shape, spacing)
    distances = np.concatenate([surface_distances(p, t, spacing), surface_distances(t, p, spacing)])
    return float(np.percentile(distances, 95))


def score_case(prediction: np.ndarray, target: np.ndarray, spacing: Optional[Sequence[float]] = None,
               case: str = '') -> Dict[str, float]:
    """``{'Dice_ET', 'Dice_TC', 'Dice_WT', 'HD95_ET', 'HD95_TC', 'HD95_WT'}`` of two BraTS label maps."""
    if np.shape(prediction) != np.shape(target):
        raise ValueError(f'case {case}: prediction shape {np.shape(prediction)} differs from the ground truth '
                         f'{np.shape(target)}')
    pred, gt = region_masks(prediction), region_masks(target)
    scores = {}
    for name in REGIONS:
        scores[f'Dice_{name}'] = dice(pred[name], gt[name])
        scores[f'HD95_{name}'] = hd95(pred[name], gt[name], spacing)
    return scores


def summarize(per_case: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """Means over cases of every score, plus the mean Dice and HD95 over the three regions."""
    keys = list(next(iter(per_case.values())))
    means = {k: float(np.mean([r[k] for r in per_case.values()])) for k in keys}
    for kind in ('Dice', 'HD95'):
        if all(f'{kind}_{r}' in means for r in REGIONS):
            means[f'{kind}_mean'] = float(np.mean([means[f'{kind}_{r}'] for r in REGIONS]))
    return means


@METRICS.register_module()
class BraTSMetric(BaseMetric):
    """Dice and HD95 per region per case (ground truth ``gt_seg`` of the samples, prediction ``result['seg']``),
    averaged over cases; spacing from ``meta['spacing']`` (1 mm when absent)."""

    default_prefix = 'brats'

    def __init__(self, hd95: bool = True, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.with_hd95 = hd95

    def process(self, data_batch: Sequence[dict], data_samples: Sequence[dict]) -> None:
        if isinstance(data_batch, dict):
            data_batch = data_batch.get('data_samples', [])
        for sample, result in zip(data_batch, data_samples):
            meta = sample.get('meta', {})
            case = str(meta.get('img_id', len(self.results)))
            if sample.get('gt_seg') is None:
                raise ValueError(f'case {case}: the sample has no gt_seg to evaluate against')
            scores = score_case(np.asarray(result['seg']), np.asarray(sample['gt_seg']), meta.get('spacing'), case)
            if not self.with_hd95:
                scores = {k: v for k, v in scores.items() if k.startswith('Dice')}
            self.results.append(dict(scores, name=case))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        per_case = {r['name']: {k: v for k, v in r.items() if k != 'name'} for r in results}
        logger = MMLogger.get_current_instance()
        for name, scores in per_case.items():
            logger.info('  '.join([name] + [f'{k}={v:.4f}' for k, v in scores.items()]))
        return summarize(per_case)


def _index_label_maps(folder: str, what: str) -> Dict[str, Path]:
    """Case name -> NIfTI file under ``folder``: ``*_seg`` files in case folders, or label maps at the top."""
    from ..datasets.brats import NIFTI_SUFFIXES, case_name_of, strip_nifti_suffix
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f'{what} folder {folder} does not exist')
    files = sorted(p for p in root.rglob('*') if p.is_file() and p.name.lower().endswith(NIFTI_SUFFIXES))
    segs = [p for p in files if strip_nifti_suffix(p.name).lower().endswith(('_seg', '-seg'))]
    chosen = segs if segs else [p for p in files if p.parent == root]
    index: Dict[str, Path] = {}
    for path in chosen:
        name = case_name_of(path)
        if name in index:
            raise ValueError(f'{what} folder {folder}: two label maps for case {name}: {index[name]}, {path}')
        index[name] = path
    if not index:
        raise FileNotFoundError(f'no NIfTI label maps (.nii/.nii.gz) in {what} folder {folder}')
    return index


@OFFLINE_SCORERS.register_module(name='dice')
class BraTSDiceScorer:
    """Dice/HD95 per BraTS region of NIfTI label maps in ``--pred-dir`` against ``--gt-dir``, matched by case name
    (``<case>.nii.gz`` or ``<case>_seg.nii.gz``; the ground truth may be a BraTS folder of case folders)."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--pred-dir', required=True, help='folder of predicted label maps (NIfTI, BraTS labels)')
        parser.add_argument('--gt-dir', required=True, help='folder of ground-truth label maps or BraTS case folders')
        parser.add_argument('--no-hd95', action='store_true', help='Dice only (faster)')

    @staticmethod
    def score(args: argparse.Namespace) -> dict:
        from ..datasets.brats import check_labels, read_nifti
        preds = _index_label_maps(args.pred_dir, 'prediction')
        gts = _index_label_maps(args.gt_dir, 'ground-truth')
        missing = sorted(set(gts) - set(preds))
        if missing:
            raise FileNotFoundError(f'{len(missing)} ground-truth case(s) have no prediction in {args.pred_dir}: '
                                    f'{", ".join(missing[:5])}{" ..." if len(missing) > 5 else ""}')
        per_case = {}
        for name in sorted(gts):
            gt, _, spacing = read_nifti(gts[name])
            pred, _, _ = read_nifti(preds[name])
            if pred.shape != gt.shape:
                raise ValueError(f'case {name}: prediction {preds[name]} has shape {pred.shape[::-1]}, ground truth '
                                 f'{gts[name]} has {gt.shape[::-1]}')
            scores = score_case(check_labels(pred, name), check_labels(gt, name), spacing, name)
            if getattr(args, 'no_hd95', False):
                scores = {k: v for k, v in scores.items() if k.startswith('Dice')}
            per_case[name] = scores
        return dict(summarize(per_case), num_cases=len(per_case), per_case=per_case)
