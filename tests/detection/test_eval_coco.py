"""CocoMetric and the `coco` offline scorer give pycocotools' own numbers on coco8 with perturbed detections."""
import contextlib
import importlib.util
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from data import METRICS
from data.datasets import CocoDetection
from data.evaluators.coco_metric import CocoMetric, CocoScorer

COCO8_VAL = 'detection/coco8/instances_val.json'


def reference_stats(gt_file: str, detections: list) -> np.ndarray:
    """pycocotools used directly, as its README shows."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_file)
        dt = gt.loadRes([dict(d) for d in detections])
        ev = COCOeval(gt, dt, 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def perturbed_detections(gt_file: str, seed: int = 0) -> list:
    """Jittered copies of the GT boxes with random scores, some relabelled, some missed, plus false positives."""
    rng = np.random.default_rng(seed)
    gt = json.load(open(gt_file))
    cat_ids = [c['id'] for c in gt['categories']]
    sizes = {im['id']: (im['width'], im['height']) for im in gt['images']}
    dets = []
    for ann in gt['annotations']:
        if rng.random() < 0.15:
            continue  # missed
        x, y, w, h = ann['bbox']
        for _ in range(rng.integers(1, 3)):  # sometimes a duplicate
            jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
            cat = ann['category_id'] if rng.random() > 0.15 else int(rng.choice(cat_ids))
            dets.append(dict(image_id=ann['image_id'], category_id=cat,
                             bbox=[x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)],
                             score=float(rng.random())))
    for img_id, (W, H) in sizes.items():
        for _ in range(5):
            w, h = rng.uniform(5, W / 2), rng.uniform(5, H / 2)
            dets.append(dict(image_id=img_id, category_id=int(rng.choice(cat_ids[:25])),
                             bbox=[rng.uniform(0, W - w), rng.uniform(0, H - h), w, h], score=float(rng.random())))
    return dets


def feed_metric(metric, detections, dataset):
    """Group COCO-format detections per image into the predictions a detector returns (xyxy, contiguous)."""
    label_of = {c: i for i, c in enumerate(dataset.metainfo['cat_ids'])}
    for i in range(len(dataset)):
        sample = dataset[i]
        mine = [d for d in detections if d['image_id'] == sample['meta']['img_id']]
        boxes = np.array([[d['bbox'][0], d['bbox'][1], d['bbox'][0] + d['bbox'][2], d['bbox'][1] + d['bbox'][3]]
                          for d in mine], np.float64).reshape(-1, 4)
        pred = dict(bboxes=boxes, scores=np.array([d['score'] for d in mine]),
                    labels=np.array([label_of[d['category_id']] for d in mine], np.int64))
        metric.process([sample], [pred])
    return metric.evaluate(len(dataset))


@pytest.fixture
def coco8_val(assets):
    gt_file = str(assets / COCO8_VAL)
    return gt_file, CocoDetection(gt_file, str(assets / 'detection/coco8/images/val'))


@pytest.mark.parametrize('seed', [0, 1])
def test_coco_metric_equals_pycocotools(coco8_val, tmp_path, seed):
    gt_file, dataset = coco8_val
    detections = perturbed_detections(gt_file, seed)
    expected = reference_stats(gt_file, detections)
    assert 0.05 < expected[0] < 0.95  # a non-trivial case
    metric = METRICS.build(dict(type='CocoMetric', ann_file=gt_file, outfile_prefix=str(tmp_path / 'res')))
    metric.dataset_meta = dataset.metainfo
    out = feed_metric(metric, detections, dataset)
    names = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR_1', 'AR_10', 'AR_100', 'AR_s', 'AR_m', 'AR_l']
    got = np.array([out[f'coco/bbox_{n}'] for n in names])
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    # the written results carry the original COCO category ids, and score the same offline
    written = json.load(open(tmp_path / 'res.bbox.json'))
    assert sorted((d['image_id'], d['category_id'], round(d['score'], 9)) for d in written) == \
        sorted((d['image_id'], d['category_id'], round(d['score'], 9)) for d in detections)
    np.testing.assert_allclose(reference_stats(gt_file, written), expected, atol=1e-6, rtol=0)


def test_coco_metric_without_ann_file_uses_sample_boxes(coco8_val, assets):
    """GT taken from resized samples (scaled back to the original size) gives the same numbers as the json."""
    gt_file, _ = coco8_val
    dataset = CocoDetection(gt_file, str(assets / 'detection/coco8/images/val'), pipeline=[
        dict(type='Albumentations', transforms=[dict(type='Resize', height=96, width=128)])])
    detections = perturbed_detections(gt_file, 3)
    metric = CocoMetric()
    metric.dataset_meta = dataset.metainfo
    out = feed_metric(metric, detections, dataset)
    np.testing.assert_allclose(out['coco/bbox_mAP'], reference_stats(gt_file, detections)[0], atol=1e-4)


def test_crowd_boxes_are_honoured(tmp_path, assets):
    """A detection on a crowd region is neither TP nor FP in pycocotools, and our metric agrees."""
    gt = json.load(open(assets / COCO8_VAL))
    gt['annotations'].append(dict(id=999, image_id=42, category_id=1, bbox=[0, 0, 200, 150], area=30000.0,
                                  iscrowd=1))
    gt_file = tmp_path / 'crowd.json'
    gt_file.write_text(json.dumps(gt))
    dataset = CocoDetection(str(gt_file), str(assets / 'detection/coco8/images/val'))
    assert dataset[1]['gt_ignore_flags'].tolist()[-1] is True
    detections = perturbed_detections(str(gt_file), 4)
    detections.append(dict(image_id=42, category_id=1, bbox=[5, 5, 150, 120], score=0.99))
    metric = CocoMetric(ann_file=str(gt_file))
    metric.dataset_meta = dataset.metainfo
    out = feed_metric(metric, detections, dataset)
    np.testing.assert_allclose(out['coco/bbox_mAP'], reference_stats(str(gt_file), detections)[0], atol=1e-6)


def test_perfect_and_empty_detections(coco8_val):
    gt_file, dataset = coco8_val
    gt = json.load(open(gt_file))
    perfect = [dict(image_id=a['image_id'], category_id=a['category_id'], bbox=a['bbox'], score=1.0)
               for a in gt['annotations']]
    metric = CocoMetric(ann_file=gt_file)
    metric.dataset_meta = dataset.metainfo
    out = feed_metric(metric, perfect, dataset)
    assert out['coco/bbox_mAP'] == pytest.approx(1.0) and out['coco/bbox_AR_100'] == pytest.approx(1.0)
    metric = CocoMetric(ann_file=gt_file)
    metric.dataset_meta = dataset.metainfo
    out = feed_metric(metric, [], dataset)
    assert out['coco/bbox_mAP'] == 0.0 and out['coco/bbox_AR_100'] == 0.0


def _evaluate_tool(repo):
    spec = importlib.util.spec_from_file_location('evaluate_tool', repo / 'tools' / 'evaluate.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_offline_coco_scorer_json(repo, assets, tmp_path, capsys):
    gt_file = str(assets / COCO8_VAL)
    detections = perturbed_detections(gt_file, 5)
    results = tmp_path / 'results.json'
    results.write_text(json.dumps(detections))
    _evaluate_tool(repo).main(['--metric', 'coco', '--ann-file', gt_file, str(results), '--json'])
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ['bbox'] and len(printed['bbox']) == 12
    np.testing.assert_allclose(printed['bbox'], reference_stats(gt_file, detections), atol=1e-6, rtol=0)


def test_offline_coco_scorer_bad_input(assets, tmp_path):
    import argparse
    gt_file = str(assets / COCO8_VAL)
    bad = tmp_path / 'bad.json'
    bad.write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match=r'bad\.json: a COCO results file is a JSON list'):
        CocoScorer.score(argparse.Namespace(ann_file=gt_file, results=str(bad)))
    bad.write_text(json.dumps([dict(image_id=123456, category_id=1, bbox=[0, 0, 1, 1], score=0.5)]))
    with pytest.raises(ValueError, match=r'bad\.json: 1 image_id\(s\) are neither image ids nor image file names of the ground truth: 123456'):
        CocoScorer.score(argparse.Namespace(ann_file=gt_file, results=str(bad)))
    bad.write_text('[{"image_id": 36, "bbox": [0, 0]}]')
    with pytest.raises(ValueError, match=r'bad\.json: entry 0 needs'):
        CocoScorer.score(argparse.Namespace(ann_file=gt_file, results=str(bad)))
    with pytest.raises(FileNotFoundError, match='nothing.json'):
        CocoScorer.score(argparse.Namespace(ann_file=str(tmp_path / 'nothing.json'), results=str(bad)))


def test_metrics_through_mmengine_evaluator(coco8_val):
    """As the Runner calls them: config dicts, tensor predictions, ``process(data_samples, data_batch)``."""
    import torch
    from mmengine.evaluator import Evaluator
    gt_file, dataset = coco8_val
    evaluator = Evaluator([dict(type='mobilevision.CocoMetric', ann_file=gt_file), dict(type='mobilevision.VOCMetric')])
    evaluator.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        s = dataset[i]
        pred = dict(bboxes=torch.as_tensor(s['gt_bboxes']), scores=torch.ones(len(s['gt_labels'])),
                    labels=torch.as_tensor(s['gt_labels']))
        evaluator.process(data_samples=[pred], data_batch=[s])
    out = evaluator.evaluate(len(dataset))
    assert out['coco/bbox_mAP'] == pytest.approx(1.0) and out['voc/mAP'] == pytest.approx(1.0)
