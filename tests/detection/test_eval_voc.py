"""VOC AP equals the devkit definitions on hand-made cases; VOCMetric, devkit files and the `voc` scorer agree."""
import argparse
import importlib.util
import json
import shutil

import numpy as np
import pytest

from data import METRICS
from data.datasets import VOCDetection
from data.evaluators.voc_metric import (DEVKIT_11_POINTS, VOCScorer, class_ap, evaluate_voc, match_class,
                                        voc_ap)

CLASSES = ['cat', 'dog']


def gt(boxes, labels, difficult=None):
    return dict(bboxes=np.array(boxes, float).reshape(-1, 4), labels=np.array(labels),
                difficult=np.zeros(len(labels), bool) if difficult is None else np.array(difficult))


def det(boxes, scores, labels):
    return dict(bboxes=np.array(boxes, float).reshape(-1, 4), scores=np.array(scores, float),
                labels=np.array(labels))


def hand_case():
    """Class 'cat': 3 positives (G1, G2 in image a; G3 in b) and a difficult box D in b.

    Detections by score: d1 hits G1 (TP), d2 hits G1 again (FP, duplicate), d3 hits D (ignored), d5 hits G3 (TP),
    d4 hits nothing (FP). G2 is missed.
    """
    gts = {'a': gt([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0]),
           'b': gt([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0], [False, True])}
    dets = {'a': det([[0, 0, 10, 10], [1, 1, 10, 10]], [0.9, 0.8], [0, 0]),
            'b': det([[50, 50, 60, 61], [100, 100, 110, 110], [0, 0, 10, 11]], [0.7, 0.6, 0.65], [0, 0, 0])}
    return gts, dets


def test_hand_made_case_both_definitions():
    gts, dets = hand_case()
    # sequence TP, FP, (ignored), TP, FP -> cum tp 1 1 1 2 2, cum fp 0 1 1 1 2, npos 3
    # recall 1/3 1/3 1/3 2/3 2/3; precision 1 1/2 1/2 2/3 1/2
    # 11-point: t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> max(2/3, 1/2) = 2/3; t >= .7 -> 0  => (4 + 3 * 2/3) / 11
    # area: envelope 1 on (0, 1/3], 2/3 on (1/3, 2/3], nothing after  => 1/3 + 2/3 * 1/3 = 5/9
    out = evaluate_voc(gts, dets, CLASSES)
    assert out['AP_11point']['cat'] == pytest.approx(6 / 11, abs=1e-12)
    assert out['AP_area']['cat'] == pytest.approx(5 / 9, abs=1e-12)
    assert out['AP_11point']['dog'] == -1.0  # no ground truth: excluded from the mean
    assert out['mAP_11point'] == pytest.approx(6 / 11) and out['mAP_area'] == pytest.approx(5 / 9)
    per_class = [(k, s, b) for k, d in dets.items() for b, s in zip(d['bboxes'], d['scores'])]
    tp, fp, npos = match_class(per_class, {k: (g['bboxes'], g['difficult']) for k, g in gts.items()})
    assert tp.tolist() == [1, 0, 0, 1, 0] and fp.tolist() == [0, 1, 0, 0, 1] and npos == 3


def test_iou_threshold_is_inclusive_and_devkit_pixel_convention():
    # GT (0, 0, 10, 10) is the devkit box (1, 1, 10, 10); a detection covering half of it has IoU exactly 0.5
    # (devkit: iw = 10 - 1 + 1 = 10, ih = 5 - 1 + 1 = 5, ua = 100 + 50 - 50 = 100): a true positive (ovmax >= 0.5)
    g = {'a': (np.array([[0., 0, 10, 10]]), np.array([False]))}
    assert class_ap([('a', 0.9, np.array([0., 0, 10, 5]))], g) == pytest.approx({'11point': 1.0, 'area': 1.0})
    assert class_ap([('a', 0.9, np.array([0., 0, 10, 4.9]))], g) == {'11point': 0.0, 'area': 0.0}
    # a detection in an image without ground truth of its class is a false positive: FP then TP gives
    # recall 0, 1 with precision 0, 1/2 -> both definitions 1/2
    assert class_ap([('b', 0.95, np.array([0., 0, 10, 10])), ('a', 0.9, np.array([0., 0, 10, 10]))], g) == \
        pytest.approx({'11point': 0.5, 'area': 0.5})


def test_eleven_point_levels_follow_the_devkit():
    # VOC2007 'for t=0:0.1:1': MATLAB makes the 4th level 3*0.1 = 0.30000000000000004, the others k/10
    assert DEVKIT_11_POINTS[3] == 3 * 0.1 and DEVKIT_11_POINTS[7] == 0.7 and DEVKIT_11_POINTS[10] == 1.0
    # 3 of 10 objects found, all correct: recall 0.1, 0.2, 0.3; 3/10 misses the level 0.30000000000000004, so only
    # the levels 0, 0.1, 0.2 count (as in the devkit and its Python ports)
    recall, precision = np.array([1, 2, 3]) / 10, np.ones(3)
    assert voc_ap(recall, precision, '11point') == pytest.approx(3 / 11, abs=1e-12)
    assert voc_ap(recall, precision, 'area') == pytest.approx(0.3, abs=1e-12)
    # 7 of 10: recall 0.7 does reach the level 0.7 (1 - 3 * 0.1 is the double nearest 0.7): levels 0 .. 0.7
    recall, precision = np.arange(1, 8) / 10, np.ones(7)
    assert voc_ap(recall, precision, '11point') == pytest.approx(8 / 11, abs=1e-12)


def test_area_ap_uses_precision_envelope():
    # recall .25 .5 .5 .75 with precision 1 .5 2/3 3/4 (the envelope lifts .5 to 3/4 between .25 and .75)
    recall = np.array([0.25, 0.5, 0.5, 0.75])
    precision = np.array([1.0, 0.5, 2 / 3, 0.75])
    assert voc_ap(recall, precision, 'area') == pytest.approx(0.25 * 1 + 0.25 * 0.75 + 0.25 * 0.75)
    # 11-point: t=0..0.2 -> 1; t=.3..0.7 -> .75; t >= .8 -> 0
    assert voc_ap(recall, precision, '11point') == pytest.approx((3 * 1 + 5 * 0.75) / 11)


def test_ties_keep_detection_order():
    # two detections of one score: the devkit's stable sort keeps file order (FP first here)
    g = {'a': (np.array([[0., 0, 10, 10]]), np.array([False]))}
    dets = [('a', 0.5, np.array([50., 50, 60, 60])), ('a', 0.5, np.array([0., 0, 10, 10]))]
    tp, fp, _ = match_class(dets, g)
    assert fp.tolist() == [1, 0] and tp.tolist() == [0, 1]


def voc_samples(devkit, year=2007):
    ds = VOCDetection(str(devkit), year, 'test')
    return ds, [ds[i] for i in range(len(ds))]


def test_voc_metric_end_to_end_and_devkit_files(assets, tmp_path, repo, capsys):
    devkit = assets / 'detection' / 'VOCdevkit'
    root = tmp_path / 'VOCdevkit'
    shutil.copytree(devkit / 'VOC2007', root / 'VOC2007')
    ds = VOCDetection(str(root), 2007, 'test', pipeline=[
        dict(type='Albumentations', transforms=[dict(type='Resize', height=100, width=80)])])
    sample = ds[0]  # dog (47, 239, 195, 371), person (7, 11, 352, 498) in the original 353x500 image
    dog, person = ds.metainfo['classes'].index('dog'), ds.metainfo['classes'].index('person')
    # person found twice (TP then duplicate FP), dog found at IoU < 0.5 (FP) then well (TP)
    pred = det([[7, 11, 352, 498], [10, 15, 350, 490], [47, 239, 100, 300], [48, 240, 195, 371]],
               [0.9, 0.8, 0.7, 0.6], [person, person, dog, dog])
    metric = METRICS.build(dict(type='VOCMetric', eval_mode='area', outfile_dir=str(tmp_path / 'dets')))
    metric.dataset_meta = ds.metainfo
    metric.process([sample], [pred])
    out = metric.evaluate(1)
    # person: TP, FP -> AP 1 (both definitions); dog: FP, TP -> precision 1/2 at recall 1 -> AP 1/2
    assert out['voc/AP_person'] == pytest.approx(1.0) and out['voc/AP_dog'] == pytest.approx(0.5)
    assert out['voc/mAP'] == out['voc/mAP_area'] == pytest.approx(0.75)
    assert out['voc/mAP_11point'] == pytest.approx(0.75)
    assert METRICS.build(dict(type='VOCMetric', eval_mode='11points')).eval_mode == '11point'
    with pytest.raises(ValueError, match='eval_mode must be one of'):
        METRICS.build(dict(type='VOCMetric', eval_mode='11'))
    # the devkit files score the same offline (1-based boxes written, read back)
    lines = (tmp_path / 'dets' / 'comp4_det_test_person.txt').read_text().split('\n')
    assert lines[0].split() == ['000001', '0.900000', '8.00', '12.00', '352.00', '498.00']
    spec = importlib.util.spec_from_file_location('evaluate_tool', repo / 'tools' / 'evaluate.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    capsys.readouterr()  # drop the metric's log table
    tool.main(['--metric', 'voc', '--devkit', str(root / 'VOC2007'), '--split', 'test', '--det-dir',
               str(tmp_path / 'dets'), '--json'])
    printed = json.loads(capsys.readouterr().out)
    assert printed['mAP_area'] == pytest.approx(0.75) and printed['mAP_11point'] == pytest.approx(0.75)
    assert printed['AP_area']['dog'] == pytest.approx(0.5) and printed['AP_area']['cat'] == -1.0
    assert printed['num_images'] == 1


def test_voc_scorer_difficult_and_bad_files(assets, tmp_path):
    root = tmp_path / 'VOC2007'
    shutil.copytree(assets / 'detection' / 'VOCdevkit' / 'VOC2007', root)
    xml = root / 'Annotations' / '000001.xml'
    xml.write_text(xml.read_text().replace('<difficult>0</difficult>', '<difficult>1</difficult>', 1))  # dog
    det_dir = tmp_path / 'dets'
    det_dir.mkdir()
    from data.datasets.voc import VOC_CLASSES
    for name in VOC_CLASSES:
        (det_dir / f'comp4_det_test_{name}.txt').write_text('')
    # a detection on the difficult dog is ignored: dog has no positives; person found once
    (det_dir / 'comp4_det_test_dog.txt').write_text('000001 0.9 48 240 195 371\n')
    (det_dir / 'comp4_det_test_person.txt').write_text('000001 0.8 8 12 352 498\n000001 0.3 200 10 220 30\n')
    args = argparse.Namespace(devkit=str(root), split='test', det_dir=str(det_dir), iou_thr=0.5, classes=None)
    out = VOCScorer.score(args)
    assert out['AP_area']['dog'] == -1.0 and out['AP_area']['person'] == 1.0 and out['mAP_area'] == 1.0
    (det_dir / 'comp4_det_test_person.txt').write_text('000002 0.8 8 12 352 498\n')
    with pytest.raises(ValueError, match=r'comp4_det_test_person\.txt: line 1: image .000002. is not in'):
        VOCScorer.score(args)
    (det_dir / 'comp4_det_test_person.txt').write_text('000001 0.8 8 12 352\n')
    with pytest.raises(ValueError, match=r'comp4_det_test_person\.txt: line 1: expected'):
        VOCScorer.score(args)
    (det_dir / 'comp4_det_test_person.txt').unlink()
    with pytest.raises(FileNotFoundError, match=r'comp4_det_test_person\.txt does not exist'):
        VOCScorer.score(args)
