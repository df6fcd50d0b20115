"""Dice and HD95 per BraTS region on hand-made volumes, the empty-ground-truth convention, the offline scorer."""
import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import cKDTree

from data import OFFLINE_SCORERS
from data.datasets.brats import write_nifti
from data.evaluators.brats_metrics import BraTSMetric, dice, hd95, region_masks, score_case


def cube(shape, lo, hi):
    mask = np.zeros(shape, bool)
    mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return mask


def test_regions():
    labels = np.array([0, 1, 2, 3, 4])
    masks = region_masks(labels)
    assert masks['ET'].tolist() == [False, False, False, True, True]
    assert masks['TC'].tolist() == [False, True, False, True, True]
    assert masks['WT'].tolist() == [False, True, True, True, True]


def test_dice_hand_made():
    a = cube((10, 10, 10), (0, 0, 0), (4, 4, 4))          # 64 voxels
    b = cube((10, 10, 10), (2, 0, 0), (6, 4, 4))          # 64 voxels, 32 shared
    assert dice(a, b) == pytest.approx(0.5)
    assert dice(a, a) == 1.0 and dice(a, ~a) == 0.0


def test_hd95_single_voxels_and_spacing():
    a, b = np.zeros((8, 8, 8), bool), np.zeros((8, 8, 8), bool)
    a[1, 2, 2], b[4, 2, 2] = True, True                   # 3 voxels apart along D
    assert hd95(a, b) == pytest.approx(3.0)
    assert hd95(a, b, spacing=(2.0, 1.0, 1.0)) == pytest.approx(6.0)
    b[1, 2, 6] = True                                     # a second GT voxel 4 voxels away along W
    # distances pooled: a->b {3}, b->a {3, 4}; 95th percentile of [3, 3, 4] = 3 + 0.9 * 1
    assert hd95(a, b) == pytest.approx(3.9)


def test_hd95_equals_brute_force_on_random_blobs():
    rng = np.random.default_rng(0)
    from scipy import ndimage
    for _ in range(3):
        a = ndimage.binary_dilation(rng.random((20, 18, 16)) > 0.995, iterations=2)
        b = ndimage.binary_dilation(rng.random((20, 18, 16)) > 0.995, iterations=2)
        spacing = (1.0, 1.5, 2.0)
        surf = lambda m: np.argwhere(m & ~ndimage.binary_erosion(m, ndimage.generate_binary_structure(3, 1)))
        pa, pb = surf(a) * spacing, surf(b) * spacing
        d_ab, _ = cKDTree(pb).query(pa)
        d_ba, _ = cKDTree(pa).query(pb)
        assert hd95(a, b, spacing) == pytest.approx(np.percentile(np.concatenate([d_ab, d_ba]), 95))


def test_empty_ground_truth_convention():
    empty = np.zeros((10, 20, 30), bool)
    some = cube(empty.shape, (1, 1, 1), (3, 3, 3))
    diagonal = np.sqrt(10 ** 2 + (20 * 2) ** 2 + 30 ** 2)
    assert dice(empty, empty) == 1.0 and hd95(empty, empty) == 0.0
    assert dice(some, empty) == 0.0 and dice(empty, some) == 0.0
    assert hd95(some, empty, (1, 2, 1)) == pytest.approx(diagonal)
    assert hd95(empty, some, (1, 2, 1)) == pytest.approx(diagonal)


def test_score_case_per_region():
    gt = np.zeros((12, 12, 12), np.int64)
    gt[2:10, 2:10, 2:10] = 2
    gt[4:8, 4:8, 4:8] = 1
    pred = gt.copy()
    pred[pred == 1] = 4                                   # core predicted as enhancing: TC and WT right, ET wrong
    scores = score_case(pred, gt)
    assert scores['Dice_WT'] == 1.0 and scores['Dice_TC'] == 1.0 and scores['HD95_WT'] == 0.0
    assert scores['Dice_ET'] == 0.0 and scores['HD95_ET'] == pytest.approx(np.sqrt(3 * 12 ** 2))
    with pytest.raises(ValueError, match='case c7: prediction shape'):
        score_case(pred[1:], gt, case='c7')


def test_metric_averages_cases():
    gt = np.zeros((12, 12, 12), np.int64)
    gt[2:6, 2:6, 2:6] = 4
    metric = BraTSMetric()
    metric.process([dict(gt_seg=gt, meta=dict(img_id='a', spacing=(1, 1, 1))),
                    dict(gt_seg=np.zeros_like(gt), meta=dict(img_id='b'))],
                   [dict(seg=gt), dict(seg=np.zeros_like(gt))])
    result = metric.compute_metrics(metric.results)
    assert result['Dice_ET'] == 1.0 and result['Dice_mean'] == 1.0 and result['HD95_mean'] == 0.0


def _write_folders(tmp_path):
    gt = np.zeros((12, 12, 12), np.uint8)
    gt[2:10, 2:10, 2:10] = 2
    gt[4:8, 4:8, 4:8] = 4
    pred = gt.copy()
    pred[2:10, 2:10, 2:6] = np.where(pred[2:10, 2:10, 2:6] == 2, 0, pred[2:10, 2:10, 2:6])
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for name in ('case_a', 'case_b'):
        write_nifti(tmp_path / 'gt' / name / f'{name}_seg.nii.gz', gt, affine)   # BraTS case-folder layout
    write_nifti(tmp_path / 'pred' / 'case_a.nii.gz', pred, affine)
    write_nifti(tmp_path / 'pred' / 'case_b.nii.gz', gt, affine)
    return gt, pred


def test_offline_scorer(tmp_path):
    gt, pred = _write_folders(tmp_path)
    scorer = OFFLINE_SCORERS.get('dice')
    args = argparse.Namespace(pred_dir=str(tmp_path / 'pred'), gt_dir=str(tmp_path / 'gt'), no_hd95=False)
    result = scorer.score(args)
    expected = score_case(pred, gt, (2.0, 2.0, 2.0))
    assert result['num_cases'] == 2
    assert result['per_case']['case_a'] == pytest.approx(expected)
    assert result['Dice_WT'] == pytest.approx((expected['Dice_WT'] + 1) / 2)
    (tmp_path / 'pred' / 'case_b.nii.gz').unlink()
    with pytest.raises(FileNotFoundError, match='case_b'):
        scorer.score(args)


def test_evaluate_cli(tmp_path, repo):
    _write_folders(tmp_path)
    out = subprocess.run([sys.executable, 'tools/evaluate.py', '--metric', 'dice', '--pred-dir',
                          str(tmp_path / 'pred'), '--gt-dir', str(tmp_path / 'gt'), '--json'],
                         cwd=repo, capture_output=True, text=True, check=True)
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    assert metrics['Dice_ET'] == 1.0 and metrics['num_cases'] == 2 and 0 < metrics['Dice_WT'] < 1
