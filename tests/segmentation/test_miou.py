"""mIoU: hand-computed cases, the torchvision reference ConfusionMatrix, dataset-wide accumulation, offline scorer."""
import json

import numpy as np
import pytest
import torch

from data.evaluators.miou import IoUMetric, confusion_matrix, scores_from_confusion
from data.visualization.masks import write_label_png

from seg_testutils import load_tool


class ReferenceConfusionMatrix:
    """The algorithm of torchvision's references/segmentation/utils.py ConfusionMatrix (rows = target)."""

    def __init__(self, n):
        self.n, self.mat = n, torch.zeros((n, n), dtype=torch.int64)

    def update(self, a, b):
        k = (a >= 0) & (a < self.n)
        self.mat += torch.bincount(self.n * a[k].to(torch.int64) + b[k], minlength=self.n ** 2).reshape(self.n,
                                                                                                         self.n)

    def compute(self):
        h = self.mat.float()
        acc_global = torch.diag(h).sum() / h.sum()
        acc = torch.diag(h) / h.sum(1)
        iu = torch.diag(h) / (h.sum(1) + h.sum(0) - torch.diag(h))
        return acc_global, acc, iu


def test_hand_computed_case():
    gt = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(pred, gt, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [0, 0, 1]])
    s = scores_from_confusion(cm, ['a', 'b', 'c'])
    assert s['IoU'] == pytest.approx({'a': 0.5, 'b': 2 / 3, 'c': 1.0})
    assert s['mIoU'] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert s['aAcc'] == pytest.approx(0.8) and s['mAcc'] == pytest.approx((0.5 + 1 + 1) / 3)


def test_class_absent_everywhere_is_left_out_of_the_mean():
    s = scores_from_confusion(confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 4))
    assert np.isnan(s['IoU']['2']) and np.isnan(s['IoU']['3'])
    assert s['mIoU'] == pytest.approx((0.5 + 0.5) / 2)


def test_equals_torchvision_reference_over_a_dataset():
    rng = np.random.default_rng(0)
    ref, metric = ReferenceConfusionMatrix(5), IoUMetric(num_classes=5, per_class=True)
    for i in range(4):
        gt = rng.integers(0, 5, (20 + i, 30))
        gt[rng.random(gt.shape) < 0.1] = 255
        pred = np.where(rng.random(gt.shape) < 0.6, gt.clip(0, 4), rng.integers(0, 5, gt.shape))
        ref.update(torch.from_numpy(gt), torch.from_numpy(pred))
        metric.process([dict(gt_seg=gt, meta=dict(file=f'{i}.png'))], [dict(seg=pred)])
    acc_global, acc, iu = ref.compute()
    out = metric.evaluate(4)
    assert out['aAcc'] == pytest.approx(acc_global.item(), abs=1e-6)
    assert out['mAcc'] == pytest.approx(acc.mean().item(), abs=1e-6)
    assert out['mIoU'] == pytest.approx(iu.mean().item(), abs=1e-6)
    assert [out[f'IoU.{k}'] for k in range(5)] == pytest.approx(iu.tolist(), abs=1e-6)


def test_dataset_wide_not_per_image_average():
    metric = IoUMetric(num_classes=2, per_class=False)
    # image 1: 1 pixel of class 1 predicted right; image 2: 9 pixels of class 1, all predicted 0
    metric.process([dict(gt_seg=np.array([[1, 0]])), dict(gt_seg=np.ones((3, 3), np.int64))],
                   [dict(seg=np.array([[1, 0]])), dict(seg=np.zeros((3, 3), np.int64))])
    out = metric.evaluate(2)
    # class 1: intersection 1, union 10; class 0: intersection 1, union 10
    assert out['mIoU'] == pytest.approx(0.1)
    with pytest.raises(ValueError, match='b.png.*differs'):
        metric.process([dict(gt_seg=np.zeros((2, 2)), meta=dict(file='b.png'))], [dict(seg=np.zeros((3, 3)))])


def test_offline_scorer(tmp_path, capsys):
    rng = np.random.default_rng(1)
    (tmp_path / 'pred').mkdir()
    (tmp_path / 'gt').mkdir()
    ref = ReferenceConfusionMatrix(4)
    for name in ('x', 'y'):
        gt = rng.integers(0, 4, (16, 12))
        gt[:2] = 255
        pred = np.where(rng.random(gt.shape) < 0.5, gt.clip(0, 3), rng.integers(0, 4, gt.shape))
        write_label_png(str(tmp_path / 'gt' / f'{name}.png'), gt, [(0, 0, 0)] * 4)  # palette PNG
        write_label_png(str(tmp_path / 'pred' / f'{name}.png'), pred)               # grey PNG
        ref.update(torch.from_numpy(gt), torch.from_numpy(pred))
    evaluate = load_tool('evaluate')
    evaluate.main(['--metric', 'miou', '--pred-dir', str(tmp_path / 'pred'), '--gt-dir', str(tmp_path / 'gt'),
                   '--num-classes', '4', '--json'])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed['mIoU'] == pytest.approx(ref.compute()[2].mean().item(), abs=1e-6)
    assert printed['num_images'] == 2
    (tmp_path / 'pred' / 'y.png').unlink()
    with pytest.raises(FileNotFoundError, match='no prediction'):
        evaluate.main(['--metric', 'miou', '--pred-dir', str(tmp_path / 'pred'), '--gt-dir', str(tmp_path / 'gt'),
                       '--num-classes', '4'])
