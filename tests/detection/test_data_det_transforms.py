"""SSD transforms keep boxes consistent with the image.

The test images encode each pixel's own (x, y) position in its colour, so after a geometric transform the pixel
under every output position tells exactly where it came from: boxes must map through the same displacement.
"""
import numpy as np
import pytest

from data import TRANSFORMS
from data.datasets.detection_base import build_transforms
from data.transforms.detection import (SSDExpand, SSDMinIoURandomCrop, SSDPhotometricDistortion, box_iou_np,
                                       ssd_test_pipeline, ssd_train_pipeline)


def coordinate_image(h: int, w: int, marker: int = 255) -> np.ndarray:
    """R = x, G = y, B = ``marker`` (255: the mean-filled canvas, B=104, is told apart; test_yolo_aug.py gives each
    mosaic part its own)."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs, ys, np.full_like(xs, marker)], axis=-1).astype(np.uint8)


THREE_BOXES = [[10, 20, 60, 80], [70, 5, 150, 50], [100, 60, 159, 119]]


def make_sample(h=120, w=160, boxes=THREE_BOXES):
    boxes = np.array(boxes, np.float32)
    n = len(boxes)
    return dict(img=coordinate_image(h, w), gt_bboxes=boxes.copy(), gt_labels=np.arange(n, dtype=np.int64),
                gt_ignore_flags=np.arange(n) == 1, meta=dict(file='synthetic', ori_shape=(h, w))), boxes


def source_origin(img: np.ndarray):
    """(dx, dy) such that output pixel (x, y) shows source pixel (x - dx, y - dy); from any source pixel."""
    ys, xs = np.nonzero(img[..., 2] == 255)
    y, x = ys[0], xs[0]
    return x - int(img[y, x, 0]), y - int(img[y, x, 1])


def test_expand_moves_boxes_with_the_image():
    np.random.seed(1)
    t = SSDExpand(mean=(123.675, 116.28, 103.53), ratio_range=(1.5, 3.0), p=1.0)
    for _ in range(5):
        sample, boxes = make_sample()
        out = t(sample)
        h, w = out['img'].shape[:2]
        assert 1.5 * 120 - 1 <= h <= 3 * 120 and 1.5 * 160 - 1 <= w <= 3 * 160
        assert out['meta']['img_shape'] == (h, w)
        dx, dy = source_origin(out['img'])
        np.testing.assert_array_equal(out['gt_bboxes'], boxes + [dx, dy, dx, dy])
        # the original picture sits at (dx, dy); the rest is the mean colour
        np.testing.assert_array_equal(out['img'][dy:dy + 120, dx:dx + 160], coordinate_image(120, 160))
        canvas = out['img'].copy()
        canvas[dy:dy + 120, dx:dx + 160] = (124, 116, 104)
        assert (canvas == np.array([124, 116, 104], np.uint8)).all()
        assert out['gt_labels'].tolist() == [0, 1, 2] and out['gt_ignore_flags'].tolist() == [False, True, False]


@pytest.mark.parametrize('min_iou,boxes', [(0.1, THREE_BOXES), (0.3, [[20, 10, 90, 100], [95, 40, 140, 90]]),
                                           (0.5, [[20, 20, 120, 100]]), (0.7, [[10, 10, 150, 110]])])
def test_min_iou_crop_geometry_and_constraint(min_iou, boxes):
    """mmdet's rule: every object overlaps the patch by >= min_iou; kept boxes are clipped and shifted."""
    np.random.seed(2)
    t = SSDMinIoURandomCrop(min_ious=(min_iou,), keep_original=False, max_trials=500, iou_rule='all')
    cropped = 0
    for _ in range(10):
        sample, boxes = make_sample(boxes=boxes)
        out = t(sample)
        if out['img'].shape == (120, 160, 3):
            continue  # no patch found for this draw: the sample is returned unchanged
        cropped += 1
        h, w = out['img'].shape[:2]
        dx, dy = source_origin(out['img'])
        x1, y1 = -dx, -dy
        patch = np.array([[x1, y1, x1 + w, y1 + h]], np.float32)
        np.testing.assert_array_equal(out['img'], coordinate_image(120, 160)[y1:y1 + h, x1:x1 + w])
        assert box_iou_np(patch, boxes).min() >= min_iou - 1e-6
        assert 0.3 * 120 - 1 <= h and 0.3 * 160 - 1 <= w and 0.5 - 0.05 <= h / w <= 2 + 0.05
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = (centers[:, 0] > x1) & (centers[:, 0] < x1 + w) & (centers[:, 1] > y1) & (centers[:, 1] < y1 + h)
        assert inside.any()
        expected = boxes[inside].copy()
        expected[:, 0::2] = expected[:, 0::2].clip(x1, x1 + w) - x1
        expected[:, 1::2] = expected[:, 1::2].clip(y1, y1 + h) - y1
        np.testing.assert_array_equal(out['gt_bboxes'], expected)
        assert out['gt_labels'].tolist() == np.arange(len(boxes))[inside].tolist()
        assert out['gt_ignore_flags'].tolist() == (np.arange(len(boxes)) == 1)[inside].tolist()
        assert out['meta']['img_shape'] == (h, w)
    assert cropped >= 5


def test_min_iou_crop_keeps_original_in_none_mode():
    t = SSDMinIoURandomCrop(min_ious=(), keep_original=True)
    sample, boxes = make_sample()
    out = t(sample)
    np.testing.assert_array_equal(out['gt_bboxes'], boxes)
    assert out['img'].shape == (120, 160, 3)


def test_photometric_changes_colours_not_geometry():
    np.random.seed(3)
    t = TRANSFORMS.build(dict(type='SSDPhotometricDistortion', p=1.0, channel_swap_p=0.0))
    rng = np.random.default_rng(0)
    img = rng.integers(30, 220, (40, 50, 3), dtype=np.uint8)
    sample = dict(img=img.copy(), gt_bboxes=np.array([[1, 2, 30, 40]], np.float32), gt_labels=np.array([3]))
    out = t(sample)
    assert out['img'].shape == img.shape and out['img'].dtype == np.uint8
    assert np.abs(out['img'].astype(int) - img).mean() > 1
    np.testing.assert_array_equal(out['gt_bboxes'], [[1, 2, 30, 40]])
    # brightness alone (contrast, saturation, hue off) is a pure additive shift within +-32
    only_brightness = SSDPhotometricDistortion(contrast_range=(1, 1), saturation_range=(1, 1), hue_delta=0, p=1.0)
    flat = np.full((4, 4, 3), 100, np.uint8)
    shifted = only_brightness(dict(img=flat.copy()))['img'].astype(int) - 100
    assert (shifted == shifted[0, 0, 0]).all() and 0 < abs(shifted[0, 0, 0]) <= 32
    with pytest.raises(ValueError, match='needs an HxWx3 uint8 image'):
        t(dict(img=np.zeros((4, 4), np.float32), meta=dict(file='x.png')))


def test_full_ssd_pipeline_boxes_follow_painted_objects():
    """Paint each object in its own colour; after the whole train pipeline the box still covers that colour."""
    np.random.seed(4)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    pipeline = build_transforms([dict(type='SSDExpand', p=0.5), dict(type='SSDMinIoURandomCrop'),
                                 dict(type='Albumentations', transforms=[dict(type='HorizontalFlip', p=0.5),
                                                                         dict(type='Resize', height=96,
                                                                              width=96)])])
    for _ in range(12):
        img = np.full((120, 160, 3), 128, np.uint8)
        boxes = np.array([[10, 20, 60, 80], [70, 5, 150, 50], [100, 60, 159, 119]], np.float32)
        for box, colour in zip(boxes.astype(int), colours):
            img[box[1]:box[3], box[0]:box[2]] = colour
        out = pipeline(dict(img=img, gt_bboxes=boxes, gt_labels=np.array([0, 1, 2]),
                            gt_ignore_flags=np.zeros(3, bool), meta=dict(file='painted')))
        assert out['img'].shape == (96, 96, 3)
        for box, label in zip(out['gt_bboxes'], out['gt_labels']):
            x1, y1, x2, y2 = box
            assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96
            inner = out['img'][int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1].astype(int)
            if inner.size == 0:
                continue
            # the object's colour dominates inside its box (overlaps are impossible: the objects are disjoint)
            close = (np.abs(inner - colours[label]).sum(axis=-1) < 60).mean()
            assert close > 0.9, (label, box, close)


def test_pipeline_helpers_build():
    train = build_transforms(ssd_train_pipeline(64))
    test = build_transforms(ssd_test_pipeline(64))
    sample, _ = make_sample()
    out = train(sample)
    assert out['img'].shape == (64, 64, 3)
    sample, boxes = make_sample()
    out = test(sample)
    np.testing.assert_allclose(out['gt_bboxes'], boxes * [64 / 160, 64 / 120, 64 / 160, 64 / 120], rtol=1e-5)
    assert out['meta']['img_shape'] == (64, 64) and out['meta']['ori_shape'] == (120, 160)
