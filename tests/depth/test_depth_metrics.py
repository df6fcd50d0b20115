"""Depth metrics on hand-computed arrays and on the real NYU Depth v2 frame; the offline scorer."""
import argparse
import json
import math
import runpy

import numpy as np
import pytest

from data import METRICS, OFFLINE_SCORERS
from data.evaluators.depth_metrics import DepthMetric, depth_errors, eigen_crop_mask


def test_each_metric_on_a_hand_computed_case():
    gt = np.array([[1.0, 2.0], [4.0, 0.0]])      # the 0 is invalid
    pred = np.array([[1.0, 1.0], [5.0, 3.0]])
    m = depth_errors(pred, gt)
    # valid errors 0, -1, +1; ratios max(p/g, g/p) = 1, 2, 1.25
    assert m['RMSE'] == pytest.approx(math.sqrt(2 / 3))
    assert m['MAE'] == pytest.approx(2 / 3)
    assert m['AbsRel'] == pytest.approx((0 + 1 / 2 + 1 / 4) / 3)
    assert m['log10'] == pytest.approx((0 + math.log10(2) + math.log10(1.25)) / 3)
    assert m['delta1'] == pytest.approx(1 / 3)   # 1.25 is not < 1.25
    assert m['delta2'] == pytest.approx(2 / 3)   # 1.25 < 1.5625 <= 2
    assert m['delta3'] == pytest.approx(2 / 3)   # 2 >= 1.953125


def test_max_depth_and_eigen_crop_masks():
    gt = np.array([[1.0, 12.0]])
    pred = np.array([[1.0, 6.0]])
    assert depth_errors(pred, gt)['MAE'] == pytest.approx(3.0)
    assert depth_errors(pred, gt, max_depth=10.0)['MAE'] == 0.0
    gt = np.full((480, 640), 2.0)
    pred = gt.copy()
    mask = eigen_crop_mask(gt.shape)
    assert mask.sum() == (471 - 45) * (601 - 41) and mask[45, 41] and not mask[44, 41] and not mask[45, 601]
    pred[~mask] = 4.0                           # wrong only outside the crop
    assert depth_errors(pred, gt, eigen_crop=True)['RMSE'] == 0.0
    assert depth_errors(pred, gt)['RMSE'] > 0.5
    with pytest.raises(ValueError, match='frame_7.*no valid'):
        depth_errors(np.ones((4, 4)), np.zeros((4, 4)), where='frame_7')
    with pytest.raises(ValueError, match='one size'):
        depth_errors(np.ones((2, 3)), np.ones((3, 2)))


def test_metric_averages_per_image_values(assets):
    gt = np.ones((4, 4), np.float32) * 2
    metric = METRICS.build(dict(type='DepthMetric'))
    batch = [dict(gt_depth=gt, meta=dict(img_id='a')), dict(gt_depth=gt, meta=dict(img_id='b'))]
    metric.process(batch, [dict(depth=gt + 1.0), dict(depth=gt + 3.0)])
    result = metric.evaluate(2)
    assert result['depth/RMSE'] == pytest.approx(2.0)    # mean of 1 and 3, not sqrt((1 + 9) / 2)
    assert result['depth/AbsRel'] == pytest.approx(1.0)  # mean of 0.5 and 1.5


def test_metric_picks_the_prediction_of_the_ground_truth_size():
    metric = DepthMetric()
    gt = np.full((8, 8), 3.0, np.float32)
    metric.process([dict(gt_depth=gt, meta={})], [dict(depth=np.ones((16, 16)), depth_input=gt.copy())])
    assert metric.results[0]['RMSE'] == 0.0
    with pytest.raises(ValueError, match='x.png: no predicted depth'):
        metric.process([dict(gt_depth=gt, meta=dict(file='x.png'))], [dict(depth=np.ones((16, 16)))])


def test_metrics_on_the_real_nyu_frame(assets):
    gt = np.load(assets / 'depth' / 'depth.npy')
    assert gt.shape == (224, 224) and gt.dtype == np.float32 and (gt > 0).all()
    g = gt.astype(np.float64)
    scaled = depth_errors(gt * 1.1, gt)
    assert scaled['AbsRel'] == pytest.approx(0.1, rel=1e-5)
    assert scaled['log10'] == pytest.approx(math.log10(1.1), rel=1e-5)
    assert scaled['RMSE'] == pytest.approx(0.1 * math.sqrt(np.mean(g ** 2)), rel=1e-5)
    assert scaled['MAE'] == pytest.approx(0.1 * g.mean(), rel=1e-5)
    assert scaled['delta1'] == 1.0
    far = depth_errors(gt * 1.3, gt)             # ratio 1.3: outside delta1, inside delta2
    assert (far['delta1'], far['delta2'], far['delta3']) == (0.0, 1.0, 1.0)
    # a constant guess (the frame's mean depth) against numpy written out here
    pred = np.full_like(g, g.mean())
    m = depth_errors(pred, gt)
    ratio = np.maximum(pred / g, g / pred)
    assert m['RMSE'] == pytest.approx(np.sqrt(np.mean((pred - g) ** 2)))
    assert m['MAE'] == pytest.approx(np.mean(np.abs(pred - g)))
    assert m['AbsRel'] == pytest.approx(np.mean(np.abs(pred - g) / g))
    assert m['log10'] == pytest.approx(np.mean(np.abs(np.log10(pred) - np.log10(g))))
    for k in (1, 2, 3):
        assert m[f'delta{k}'] == pytest.approx(np.mean(ratio < 1.25 ** k))
    assert 0 < m['delta1'] < 1


def test_offline_scorer_matches_npy_files_by_stem(tmp_path, assets, repo, capsys):
    gt = np.load(assets / 'depth' / 'depth.npy')
    (tmp_path / 'gt').mkdir()
    (tmp_path / 'pred').mkdir()
    for stem, factor in (('a', 1.1), ('b', 1.0)):
        np.save(tmp_path / 'gt' / f'{stem}.npy', gt)
        np.save(tmp_path / 'pred' / f'{stem}.npy', gt * factor)
    args = argparse.Namespace(pred_dir=str(tmp_path / 'pred'), gt_dir=str(tmp_path / 'gt'), max_depth=None,
                              min_depth=1e-3, eigen_crop=False)
    scores = OFFLINE_SCORERS.get('depth').score(args)
    assert scores['num_images'] == 2
    assert scores['AbsRel'] == pytest.approx(0.05, rel=1e-5)  # (0.1 + 0) / 2
    assert scores['per_image']['b']['RMSE'] == 0.0
    # the command line: tools/evaluate.py --metric depth --pred-dir P --gt-dir G --json
    evaluate = runpy.run_path(str(repo / 'tools' / 'evaluate.py'), run_name='evaluate')
    evaluate['main'](['--metric', 'depth', '--pred-dir', str(tmp_path / 'pred'), '--gt-dir', str(tmp_path / 'gt'),
                      '--json'])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed['AbsRel'] == pytest.approx(0.05, rel=1e-5)
    (tmp_path / 'pred' / 'b.npy').unlink()
    with pytest.raises(FileNotFoundError, match='no prediction'):
        OFFLINE_SCORERS.get('depth').score(args)


def test_scoring_at_the_original_resolution_with_the_eigen_crop(assets):
    import cv2
    from data import TRANSFORMS
    from tasks import TASKS
    depth = cv2.resize(np.load(assets / 'depth' / 'depth.npy'), (640, 480), interpolation=cv2.INTER_NEAREST)
    image = np.zeros((480, 640, 3), np.uint8)
    sample = TRANSFORMS.build(dict(type='DepthResize', size=(64, 64), keep_original=True))(
        dict(img=image, gt_depth=depth, meta=dict(file='nyu')))
    assert sample['gt_depth'].shape == (64, 64) and sample['gt_depth_ori'].shape == (480, 640)
    model = TASKS.build(dict(type='DepthEstimator',
                             backbone=dict(type='MobileNetV1', width_mult=0.25, out_indices=(0, 1, 2, 4)),
                             head=dict(type='NNConv5Decoder', channels=(128, 64, 32, 16, 8)))).eval()
    import torch
    with torch.no_grad():
        (result,) = model(**model.data_preprocessor([sample], False), mode='predict')
    full = METRICS.build(dict(type='DepthMetric', resolution='original', eigen_crop=True, max_depth=10.0))
    full.process([sample], [result])
    expected = depth_errors(result['depth'], depth, max_depth=10.0, eigen_crop=True)
    assert full.results[0]['RMSE'] == pytest.approx(expected['RMSE'])
    perfect = METRICS.build(dict(type='DepthMetric', resolution='original', eigen_crop=True))
    perfect.process([sample], [dict(depth=depth, depth_input=np.ones((64, 64)))])
    assert perfect.results[0]['RMSE'] == 0.0 and perfect.results[0]['delta1'] == 1.0
