"""YOLO training augmentation: boxes, labels and ignore flags stay with the pixels they describe.

As in test_data_det_transforms.py, test images encode each pixel's position in its colour (R = x, G = y) and the
image's identity in B, so the pixel under any output position tells where it came from.
"""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from data import TRANSFORMS
from data.datasets import CocoDetection, VOCDetection, YOLODetection
from data.transforms.yolo_aug import HSVJitter, Mosaic, RandomAffine, filter_boxes, yolo_train_pipeline
from tasks.detection.yolo.hooks import CloseMosaicHook
from tasks.registry import HOOKS
from tests.detection.test_data_det_transforms import coordinate_image

MARKERS = (10, 20, 30, 40)  # blue value of each mosaic part; the canvas fill is 114


def part(h, w, k, boxes):
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    return dict(img=coordinate_image(h, w, MARKERS[k]), gt_bboxes=boxes, gt_labels=np.arange(n) + 10 * k,
                gt_ignore_flags=np.arange(n) % 2 == 1, meta=dict(file=f'part{k}', ori_shape=(h, w)))


# (h, w) of the four parts, long side 64 = img_scale, so they are pasted without resizing
SIZES = [(48, 64), (64, 40), (64, 64), (30, 64)]
BOXES = [[[2, 3, 20, 30], [40, 30, 64, 48]], [[0, 0, 40, 64]], [[5, 5, 15, 15], [30, 40, 60, 60], [50, 0, 64, 9]],
         [[1, 1, 63, 29], [10, 10, 12, 12]]]


def mosaic_input():
    parts = [part(h, w, k, b) for k, ((h, w), b) in enumerate(zip(SIZES, BOXES))]
    sample = parts[0]
    sample['mix_results'] = parts[1:]
    return sample


def test_mosaic_places_four_images_around_a_centre():
    t = TRANSFORMS.build(dict(type='Mosaic', img_scale=64))
    assert t.num_extra_samples == 3
    for seed in range(6):
        np.random.seed(seed)
        out = t(mosaic_input())
        img = out['img']
        assert img.shape == (128, 128, 3) and out['meta']['img_shape'] == (128, 128) and 'mix_results' not in out
        origins, covered = [], np.zeros((128, 128), bool)
        for k, (h, w) in enumerate(SIZES):
            ys, xs = np.nonzero(img[..., 2] == MARKERS[k])
            assert len(ys), f'part {k} not visible'
            x0 = xs - img[ys, xs, 0].astype(int)
            y0 = ys - img[ys, xs, 1].astype(int)
            assert (x0 == x0[0]).all() and (y0 == y0[0]).all()  # a pure shift: pasted, not resized
            x0, y0 = int(x0[0]), int(y0[0])
            # the visible part is the image's whole overlap with the canvas
            vx1, vy1, vx2, vy2 = max(x0, 0), max(y0, 0), min(x0 + w, 128), min(y0 + h, 128)
            assert len(ys) == (vx2 - vx1) * (vy2 - vy1)
            np.testing.assert_array_equal(img[vy1:vy2, vx1:vx2],
                                          coordinate_image(h, w, MARKERS[k])[vy1 - y0:vy2 - y0, vx1 - x0:vx2 - x0])
            covered[vy1:vy2, vx1:vx2] = True
            origins.append((x0, y0))
        # the four parts meet at one centre in [32, 96]: top-left by its bottom-right corner, and so on
        xc, yc = origins[3]
        assert 32 <= xc <= 96 and 32 <= yc <= 96
        assert origins[0] == (xc - 64, yc - 48) and origins[1] == (xc, yc - 64) and origins[2] == (xc - 64, yc)
        assert (img[~covered] == 114).all()
        # boxes: shifted with their part, clipped to the canvas, empty ones dropped; labels and flags follow
        exp_boxes, exp_labels, exp_flags = [], [], []
        for k, (x0, y0) in enumerate(origins):
            for i, box in enumerate(BOXES[k]):
                b = (np.array(box, np.float32) + [x0, y0, x0, y0]).clip(0, 128)
                if b[2] > b[0] and b[3] > b[1]:
                    exp_boxes.append(b)
                    exp_labels.append(10 * k + i)
                    exp_flags.append(i % 2 == 1)
        np.testing.assert_array_equal(out['gt_bboxes'], np.array(exp_boxes, np.float32).reshape(-1, 4))
        assert out['gt_labels'].tolist() == exp_labels and out['gt_ignore_flags'].tolist() == exp_flags
        assert out['gt_bboxes'].dtype == np.float32 and out['gt_labels'].dtype == np.int64


def test_mosaic_resizes_to_the_long_side_and_switches_off():
    img = np.full((96, 128, 3), 50, np.uint8)
    img[20:60, 40:100] = (200, 0, 0)
    sample = dict(img=img, gt_bboxes=np.array([[40, 20, 100, 60]], np.float32), gt_labels=np.array([1]),
                  gt_ignore_flags=np.array([False]), meta=dict(file='painted'))
    t = Mosaic(img_scale=64)
    t.enabled = False
    assert t.num_extra_samples == 0
    out = t(dict(sample))
    assert out['img'].shape == (48, 64, 3) and out['meta']['img_shape'] == (48, 64)
    np.testing.assert_allclose(out['gt_bboxes'], [[20, 10, 50, 30]])
    assert (out['img'][11:29, 21:49] == (200, 0, 0)).all()
    assert Mosaic(img_scale=64, p=0.0).num_extra_samples == 0
    # in a mosaic a larger image is resized the same way: its painted box keeps its colour
    parts = [dict(sample, meta=dict(file=f'p{k}')) for k in range(4)]
    parts[0]['mix_results'] = parts[1:]
    np.random.seed(0)
    out = Mosaic(img_scale=64)(parts[0])
    assert len(out['gt_bboxes']) >= 1
    for x1, y1, x2, y2 in out['gt_bboxes'].round().astype(int):
        assert (out['img'][y1 + 1:y2 - 1, x1 + 1:x2 - 1] == (200, 0, 0)).all()


def test_mosaic_without_extra_samples_is_an_error():
    sample = part(48, 64, 0, BOXES[0])
    with pytest.raises(ValueError, match=r"part0: Mosaic needs 3 extra samples in sample\['mix_results'\]"):
        Mosaic(img_scale=64)(sample)
    with pytest.raises(ValueError, match='Mosaic needs an HxWx3 uint8 image'):
        Mosaic(img_scale=64)(dict(img=np.zeros((4, 4), np.float32), meta=dict(file='x.png')))


def test_affine_switched_off_centres_the_image():
    t = RandomAffine(output_size=64)
    t.enabled = False
    out = t(dict(part(64, 40, 0, [[0, 0, 40, 64], [4, 4, 10, 10]])))
    assert out['img'].shape == (64, 64, 3)
    np.testing.assert_array_equal(out['img'][:, 12:52], coordinate_image(64, 40, MARKERS[0]))
    assert (out['img'][:, :12] == 114).all() and (out['img'][:, 52:] == 114).all()
    np.testing.assert_array_equal(out['gt_bboxes'], [[12, 0, 52, 64], [16, 4, 22, 10]])


def test_affine_crop_of_a_mosaic_moves_pixels_and_boxes_together():
    """Scale 1: a translated view; each output pixel shows the source pixel the box shift says it should."""
    for seed in range(4):
        np.random.seed(seed)
        t = RandomAffine(scale=(1.0, 1.0), translate=0.1, output_size=64)
        np.random.seed(seed)
        matrix, _ = t.draw_matrix((128, 128), (64, 64))
        dx, dy = matrix[0, 2], matrix[1, 2]
        np.random.seed(seed)
        sample = part(128, 128, 0, [[40, 40, 80, 90], [0, 0, 20, 20], [60, 20, 100, 62]])
        out = t(sample)
        assert out['img'].shape == (64, 64, 3)
        # linear interpolation of a linear ramp: the source coordinate to within one level
        ys, xs = np.mgrid[2:62, 2:62]
        assert np.abs(out['img'][2:62, 2:62, 0].astype(float) - (xs - dx)).max() <= 1.0
        assert np.abs(out['img'][2:62, 2:62, 1].astype(float) - (ys - dy)).max() <= 1.0
        expected = (np.array([[40, 40, 80, 90], [0, 0, 20, 20], [60, 20, 100, 62]]) + [dx, dy, dx, dy]).clip(0, 64)
        w, h = expected[:, 2] - expected[:, 0], expected[:, 3] - expected[:, 1]
        keep = (w > 2) & (h > 2) & (w * h / np.array([2000, 400, 1680]) > 0.1)
        np.testing.assert_allclose(out['gt_bboxes'], expected[keep], atol=1e-4)
        assert out['gt_labels'].tolist() == np.arange(3)[keep].tolist()
        assert out['gt_ignore_flags'].tolist() == (np.arange(3) % 2 == 1)[keep].tolist()


def test_affine_box_filter_on_a_fixed_scale():
    """Scale 0.5, no translation, 100x100 -> 30x30: x' = 0.5 x - 10. Each box hits one rule of the filter."""
    boxes = np.array([[20, 20, 44, 44],    # -> (0, 0, 12, 12): kept whole
                      [0, 0, 30, 30],      # -> (0, 0, 5, 5) of 15x15: 11% kept
                      [0, 0, 26, 26],      # -> (0, 0, 3, 3) of 13x13: 5% kept -> dropped (area)
                      [0, 0, 24, 24],      # -> (0, 0, 2, 2): sides not > 2 -> dropped
                      [60, 60, 80, 80],    # -> (20, 20, 30, 30): kept
                      [40, 50, 43, 70]],   # -> 1.5 px wide -> dropped
                     np.float32)
    t = RandomAffine(scale=(0.5, 0.5), translate=0.0, output_size=30)
    sample = dict(img=np.zeros((100, 100, 3), np.uint8), gt_bboxes=boxes, gt_labels=np.arange(6),
                  gt_ignore_flags=np.array([0, 1, 0, 1, 0, 1], bool))
    out = t(sample)
    np.testing.assert_allclose(out['gt_bboxes'], [[0, 0, 12, 12], [0, 0, 5, 5], [20, 20, 30, 30]])
    assert out['gt_labels'].tolist() == [0, 1, 4] and out['gt_ignore_flags'].tolist() == [False, True, False]


def test_filter_boxes_rules():
    before = np.array([[0, 0, 300, 3], [0, 0, 303, 3], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    after = np.array([[0, 0, 297, 3], [0, 0, 303, 3], [0, 0, 3.0, 3.1], [0, 0, 3.2, 3.2]], np.float32)
    # aspect 99 kept, 101 dropped; 9.3% of the area dropped, 10.24% kept at scale 1 but not at scale 1.02
    assert filter_boxes(before, after, 1.0).tolist() == [True, False, False, True]
    assert filter_boxes(before[3:], after[3:], 1.02).tolist() == [False]


def test_hsv_gains():
    levels = np.arange(0, 256, 4)
    gray = np.repeat(levels.astype(np.uint8)[None, :, None], 3, axis=2)  # 1 x 64 gray ramp
    t = HSVJitter(hgain=0.0, sgain=0.0, vgain=0.4)
    np.random.seed(7)
    gains = []
    for _ in range(4):
        out = t(dict(img=gray.copy()))['img']
        assert (out == out[..., :1]).all()  # still gray
        # every level is floor(min(level x g, 255)) for one value gain g: the gains that explain each level meet
        got, v = out[0, 1:, 0].astype(float), levels[1:].astype(float)
        clipped = got == 255
        lo = max((got[~clipped] / v[~clipped]).max(), (255 / v[clipped]).max() if clipped.any() else 0)
        hi = ((got[~clipped] + 1) / v[~clipped]).min()
        assert 0.6 <= lo < hi <= 1.4, (lo, hi)
        gains.append((lo + hi) / 2)
    assert max(gains) - min(gains) > 0.05  # a new gain per call
    # hue wraps modulo 180 (OpenCV's 8-bit hue), saturation and value clip at 255
    hue, sat, val = HSVJitter.tables(np.array([1.5, 2.0, 0.5]))
    assert hue[120] == 0 and hue[100] == 150 and sat[200] == 255 and sat[100] == 200 and val[255] == 127
    # no gains: the image is untouched; boxes are never touched
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(HSVJitter(0, 0, 0)(dict(img=img.copy()))['img'], img)
    boxes = np.array([[1, 2, 5, 6]], np.float32)
    out = TRANSFORMS.build(dict(type='HSVJitter'))(dict(img=img.copy(), gt_bboxes=boxes.copy()))
    assert not np.array_equal(out['img'], img) and np.array_equal(out['gt_bboxes'], boxes)


# ----- datasets -----
class Tag:
    """A stage before the mosaic: counts its calls and marks the sample."""

    def __init__(self):
        self.calls = 0

    def __call__(self, sample):
        self.calls += 1
        sample['meta']['tagged'] = True
        return sample


class Grab:
    """Stands in for a mixing transform: asks for two extra samples and keeps what it got."""
    num_extra_samples = 2

    def __call__(self, sample):
        self.got = sample.pop('mix_results')
        return sample


def test_dataset_hands_extra_samples_through_the_earlier_stages(assets):
    tag, grab = Tag(), Grab()
    ds = YOLODetection(str(assets / 'detection' / 'coco8'), 'train', classes=[str(i) for i in range(80)],
                       pipeline=[tag, grab])
    np.random.seed(3)
    expected = np.random.randint(0, len(ds), size=2).tolist()
    np.random.seed(3)
    out = ds[1]
    assert tag.calls == 3 and out['meta']['tagged']
    assert len(grab.got) == 2 and all(m['meta']['tagged'] for m in grab.got)
    assert [m['meta']['img_id'] for m in grab.got] == [ds.get_data_info(j)['img_id'] for j in expected]
    # without a mixing stage the pipeline runs once per sample, as before
    tag = Tag()
    ds = YOLODetection(str(assets / 'detection' / 'coco8'), 'train', classes=[str(i) for i in range(80)],
                       pipeline=[tag])
    ds[0]
    assert tag.calls == 1


def _datasets(assets, pipeline):
    coco8, devkit = assets / 'detection' / 'coco8', assets / 'detection' / 'VOCdevkit'
    return [CocoDetection(str(coco8 / 'instances_train.json'), str(coco8 / 'images' / 'train'), pipeline=pipeline),
            VOCDetection(str(devkit), years=[2007, 2012], split='trainval', pipeline=pipeline),
            YOLODetection(str(coco8), 'train', data_yaml=str(coco8 / 'coco8.yaml'), pipeline=pipeline)]


def test_train_pipeline_on_coco_voc_and_yolo_datasets(assets):
    np.random.seed(0)
    for ds in _datasets(assets, yolo_train_pipeline(96)):
        num_classes = len(ds.metainfo['classes'])
        total = 0
        for i in range(len(ds)):
            out = ds[i]
            assert out['img'].shape == (96, 96, 3) and out['img'].dtype == np.uint8
            boxes = out['gt_bboxes']
            assert boxes.dtype == np.float32 and len(boxes) == len(out['gt_labels']) == len(out['gt_ignore_flags'])
            assert (boxes >= 0).all() and (boxes <= 96).all()
            assert ((boxes[:, 2:] - boxes[:, :2]) > 2).all()
            assert ((out['gt_labels'] >= 0) & (out['gt_labels'] < num_classes)).all()
            total += len(boxes)
        assert total > 0, type(ds).__name__


def painted_yolo_dataset(root, n=4):
    """YOLO-txt images on a gray background with one solid rectangle per class colour."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    rng = np.random.default_rng(0)
    (root / 'images' / 'train').mkdir(parents=True)
    (root / 'labels' / 'train').mkdir(parents=True)
    for k in range(n):
        h, w = int(rng.integers(60, 120)), int(rng.integers(60, 120))
        img = np.full((h, w, 3), 128, np.uint8)
        lines = []
        for c, colour in enumerate(colours):  # three disjoint vertical bands, one object in each
            x1 = int(c * w / 3 + rng.integers(1, 4))
            x2 = int((c + 1) * w / 3 - rng.integers(1, 4))
            y1, y2 = int(rng.integers(0, h // 3)), int(rng.integers(h // 2, h))
            img[y1:y2, x1:x2] = colour
            lines.append(f'{c} {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}')
        cv2.imwrite(str(root / 'images' / 'train' / f'{k}.png'), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        (root / 'labels' / 'train' / f'{k}.txt').write_text('\n'.join(lines))
    return colours


def test_boxes_follow_painted_objects_through_the_pipeline(tmp_path):
    colours = np.array(painted_yolo_dataset(tmp_path))
    pipeline = [p for p in yolo_train_pipeline(64) if p['type'] != 'HSVJitter']  # colours must stay put
    pipeline[-1] = dict(type='Albumentations', transforms=[dict(type='HorizontalFlip', p=0.5)])
    ds = YOLODetection(str(tmp_path), 'train', classes=['r', 'g', 'b'], pipeline=pipeline)
    np.random.seed(1)
    checked = 0
    for i in range(12):
        out = ds[i % 4]
        img = out['img'].astype(int)
        for box, label in zip(out['gt_bboxes'], out['gt_labels']):
            x1, y1, x2, y2 = box
            inner = img[int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1]
            if inner.size == 0:
                continue
            close = (np.abs(inner - colours[label]).sum(-1) < 60).mean()
            assert close > 0.95, (i, label, box, close)
            checked += 1
    assert checked >= 20


# ----- closing the mosaic -----
def fake_runner(loader, epoch, max_epochs=12):
    return SimpleNamespace(epoch=epoch, max_epochs=max_epochs, train_loop=SimpleNamespace(dataloader=loader),
                           logger=SimpleNamespace(info=lambda msg: None))


def test_close_mosaic_reaches_persistent_workers(assets):
    ds = YOLODetection(str(assets / 'detection' / 'coco8'), 'train', classes=[str(i) for i in range(80)],
                       pipeline=[dict(type='Mosaic', img_scale=32)])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1, persistent_workers=True,
                                         collate_fn=list)
    hook = HOOKS.build(dict(type='CloseMosaicHook', num_last_epochs=10))
    shapes = []
    for epoch in range(4):
        hook.before_train_epoch(fake_runner(loader, epoch))
        shapes.append({s['img'].shape[:2] for batch in loader for s in batch})
    assert shapes[0] == shapes[1] == {(64, 64)}  # 2s x 2s mosaics
    assert all(max(hw) == 32 for hw in shapes[2] | shapes[3])  # epochs 2 and 3 of 12: single images, long side s
    assert ds.pipeline.transforms[0].enabled is False and hook.switched


def test_close_mosaic_without_a_mosaic_is_an_error(assets):
    ds = YOLODetection(str(assets / 'detection' / 'coco8'), 'train', classes=[str(i) for i in range(80)],
                       pipeline=[dict(type='HSVJitter')])
    loader = torch.utils.data.DataLoader(ds, batch_size=1, collate_fn=list)
    CloseMosaicHook(num_last_epochs=2).before_train_epoch(fake_runner(loader, 0))  # not yet: nothing happens
    with pytest.raises(ValueError, match='CloseMosaicHook: the training pipeline has no Mosaic transform'):
        CloseMosaicHook(num_last_epochs=2).before_train_epoch(fake_runner(loader, 10))
