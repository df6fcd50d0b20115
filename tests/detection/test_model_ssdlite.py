"""SSDLite parts on hand-made cases and against torchvision: default boxes, coder, matcher, loss, neck, head,
preprocessing, post-processing, visualisation, results json and the Detector's three modes."""
import json

import numpy as np
import pytest
import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator as TVDefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList

from heads.ssdlite import SSDLiteHead
from necks.ssdlite import SSDLiteNeck
from tasks.detection import (BACKGROUND, IGNORE, DefaultBoxGenerator, DeltaXYWHCoder, DetDataPreprocessor, Detector,
                             SSDLoss, SSDMatcher, SSDPostProcessor)


def tiny_detector(num_classes=3, **kwargs):
    return Detector(backbone=dict(type='MobileNetV3', arch='small', width_mult=0.5, out_indices=(4, 6)),
                    neck=dict(type='SSDLiteNeck', extra_channels=(64, 32, 32, 16)), head=dict(type='SSDLiteHead'),
                    num_classes=num_classes, **kwargs)


# --- default boxes -------------------------------------------------------------------------------------------
@pytest.mark.parametrize('size,grids', [(300, [19, 10, 5, 3, 2, 1]), (320, [20, 10, 5, 3, 2, 1]),
                                        (512, [32, 16, 8, 4, 2, 1])])
def test_default_boxes_equal_torchvision(size, grids):
    ours = DefaultBoxGenerator()([(g, g) for g in grids], (size, size))
    tv = TVDefaultBoxGenerator([[2, 3]] * 6, min_ratio=0.2, max_ratio=0.95)
    images = ImageList(torch.zeros(1, 3, size, size), [(size, size)])
    ref = tv(images, [torch.zeros(1, 1, g, g) for g in grids])[0]
    assert ours.shape == (6 * sum(g * g for g in grids), 4)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-4)


def test_default_boxes_by_hand():
    gen = DefaultBoxGenerator()
    assert gen.num_anchors == [6] * 6
    assert gen.scales[0] == pytest.approx(0.2) and gen.scales[5] == pytest.approx(0.95) and gen.scales[6] == 1
    boxes = gen([(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)], (320, 320))
    # first location of the first map: centre (8, 8); side 0.2 * 320 = 64, then sqrt(0.2 * 0.35) * 320
    torch.testing.assert_close(boxes[0], torch.tensor([-24.0, -24.0, 40.0, 40.0]))
    s2 = (0.2 * 0.35) ** 0.5 * 320
    torch.testing.assert_close(boxes[1], torch.tensor([8 - s2 / 2, 8 - s2 / 2, 8 + s2 / 2, 8 + s2 / 2]))
    # aspect ratio 2: w = s sqrt(2), h = s / sqrt(2)
    w, h = 64 * 2 ** 0.5, 64 / 2 ** 0.5
    torch.testing.assert_close(boxes[2], torch.tensor([8 - w / 2, 8 - h / 2, 8 + w / 2, 8 + h / 2]))
    # the last map: one location at the centre, the interpolated box clipped to the image
    torch.testing.assert_close(boxes[-6], torch.tensor([160 - 0.95 * 160, 160 - 0.95 * 160,
                                                        160 + 0.95 * 160, 160 + 0.95 * 160]))
    with pytest.raises(ValueError, match='6 maps'):
        gen([(1, 1)], (64, 64))


# --- box coder -----------------------------------------------------------------------------------------------
def test_box_coder_by_hand_and_against_torchvision():
    coder = DeltaXYWHCoder()
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 25.0, 45.0]])
    gt = torch.tensor([[1.0, 1.0, 11.0, 11.0], [0.0, 0.0, 40.0, 20.0]])
    deltas = coder.encode(gt, anchors)
    # centre shift (1, 1) px on a 10 px box / 0.1 = (1, 1); same size -> 0
    torch.testing.assert_close(deltas[0], torch.tensor([1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(deltas, BoxCoder((10.0, 10.0, 5.0, 5.0)).encode_single(gt, anchors))
    torch.testing.assert_close(coder.decode(deltas, anchors), gt)
    torch.testing.assert_close(coder.decode(deltas, anchors), BoxCoder((10.0, 10.0, 5.0, 5.0)).decode_single(
        deltas, anchors))
    huge = coder.decode(torch.tensor([[0.0, 0.0, 1e4, 1e4]]), anchors[:1])
    assert torch.isfinite(huge).all()


# --- matcher -------------------------------------------------------------------------------------------------
def test_matcher_threshold_best_anchor_and_ignore():
    anchors = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 12], [50, 50, 60, 60], [100, 100, 110, 110],
                            [200, 200, 210, 210]])
    gt = torch.tensor([[0.0, 0, 10, 11],          # IoU >= 0.5 with anchors 0 and 1
                       [52.0, 52, 70, 70],        # best IoU 0.14 with anchor 2: matched as its best anchor
                       [100.0, 100, 110, 110]])   # ignored (crowd): anchor 3 ignored, not background
    ignore = torch.tensor([False, False, True])
    matches = SSDMatcher(0.5)(gt, anchors, ignore)
    assert matches.tolist() == [0, 0, 1, IGNORE, BACKGROUND]
    # no ground truth at all: everything is background
    assert (SSDMatcher()(torch.zeros(0, 4), anchors) == BACKGROUND).all()


# --- loss ----------------------------------------------------------------------------------------------------
def test_loss_hard_negative_mining_by_hand():
    loss = SSDLoss(neg_pos_ratio=3)
    # 1 image, 6 default boxes, 2 classes (+ background); box 0 positive (class 1 -> column 2), box 5 ignored
    logits = torch.zeros(1, 6, 3)
    logits[0, 1:5, 1] = torch.tensor([4.0, 1.0, 3.0, 2.0])  # negatives with rising background loss
    logits[0, 5, 1] = 10.0                                  # ignored: never mined
    cls_t = torch.tensor([[2, 0, 0, 0, 0, -1]])
    deltas = torch.zeros(1, 6, 4)
    deltas[0, 0] = torch.tensor([1.0, 0.0, 0.0, 2.0])
    reg_t = torch.zeros(1, 6, 4)
    out = loss(logits, deltas, cls_t, reg_t)
    ce = torch.nn.functional.cross_entropy(logits[0], cls_t[0].clamp(min=0), reduction='none')
    expected_cls = ce[0] + ce[1] + ce[3] + ce[4]  # the 3 hardest negatives: logits 4, 3, 2
    torch.testing.assert_close(out['loss_cls'], expected_cls)
    torch.testing.assert_close(out['loss_bbox'], torch.tensor(0.5 + 1.5))  # smooth-L1: 0.5 * 1^2 + (2 - 0.5)


def test_loss_without_objects_is_finite_and_trains_background_only_when_asked():
    logits = torch.randn(2, 10, 4, requires_grad=True)
    deltas = torch.randn(2, 10, 4, requires_grad=True)
    cls_t = torch.zeros(2, 10, dtype=torch.long)
    out = SSDLoss()(logits, deltas, cls_t, torch.zeros(2, 10, 4))
    assert float(out['loss_cls'].detach()) == 0 and float(out['loss_bbox'].detach()) == 0
    out = SSDLoss(min_negatives_per_image=3)(logits, deltas, cls_t, torch.zeros(2, 10, 4))
    assert torch.isfinite(out['loss_cls']) and float(out['loss_cls'].detach()) > 0
    sum(out.values()).backward()
    assert torch.isfinite(logits.grad).all()


def test_detector_loss_on_empty_and_crowd_only_images():
    model = tiny_detector().train()
    rng = np.random.default_rng(0)
    samples = [dict(img=rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), gt_bboxes=np.zeros((0, 4), np.float32),
                    gt_labels=np.zeros(0, np.int64)),
               dict(img=rng.integers(0, 255, (96, 96, 3), dtype=np.uint8),
                    gt_bboxes=np.array([[10, 10, 60, 60]], np.float32), gt_labels=np.array([1]),
                    gt_ignore_flags=np.array([True]))]
    losses = model(**model.data_preprocessor(samples, True), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    bad = dict(samples[1], gt_ignore_flags=np.array([False]), gt_labels=np.array([3]))
    with pytest.raises(ValueError, match='labels must lie in 0..2'):
        model(**model.data_preprocessor([bad], True), mode='loss')


# --- neck and head -------------------------------------------------------------------------------------------
def test_neck_and_head_shapes_and_errors():
    neck = SSDLiteNeck([24, 48], extra_channels=(32, 16, 16, 8), min_depth=8)
    assert neck.out_channels == [24, 48, 32, 16, 16, 8]
    feats = neck([torch.randn(2, 24, 8, 8), torch.randn(2, 48, 4, 4)])
    assert [tuple(f.shape[-2:]) for f in feats] == [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1), (1, 1)]
    # extra layers: 1x1 to half depth, 3x3 depthwise stride 2, 1x1; ReLU6 after each
    block = neck.extra[0]
    assert block[0][0].out_channels == 16 and block[1][0].groups == 16 and block[1][0].stride == (2, 2)
    assert isinstance(block[2][2], torch.nn.ReLU6)
    head = SSDLiteHead(neck.out_channels, num_classes=5, num_anchors=6)
    logits, deltas = head(feats)
    n = 6 * (64 + 16 + 4 + 1 + 1 + 1)
    assert logits.shape == (2, n, 6) and deltas.shape == (2, n, 4)
    assert head.cls_preds[0].depthwise[0].groups == 24  # separable prediction layers
    with pytest.raises(ValueError, match='anchor counts'):
        SSDLiteHead([8, 8], num_classes=2, num_anchors=[6])
    with pytest.raises(ValueError, match='at least one'):
        SSDLiteNeck([])


# --- preprocessing and post-processing ------------------------------------------------------------------------
def test_preprocessor_uint8_float_resize_and_errors():
    pre = DetDataPreprocessor(mean=[127.5] * 3, std=[127.5] * 3)
    img = np.full((4, 6, 3), 255, np.uint8)
    out = pre([dict(img=img), dict(img=img.astype(np.float32) / 255)], False)
    torch.testing.assert_close(out['inputs'], torch.ones(2, 3, 4, 6))
    with pytest.raises(ValueError, match='differ in shape'):
        pre([dict(img=img), dict(img=np.zeros((5, 6, 3), np.uint8))], False)
    resize = DetDataPreprocessor(resize=(8, 12))
    sample = dict(img=img, gt_bboxes=np.array([[1, 1, 3, 2]], np.float32), meta=dict(ori_shape=(4, 6)))
    out = resize([sample], True)
    assert out['inputs'].shape == (1, 3, 8, 12) and out['data_samples'][0]['meta']['img_shape'] == (8, 12)
    np.testing.assert_allclose(out['data_samples'][0]['gt_bboxes'], [[2, 2, 6, 4]])
    assert 'img_shape' not in sample['meta']  # the caller's sample is left alone


def test_post_processor_threshold_nms_max_and_rescale():
    anchors = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40]])
    logits = torch.full((1, 3, 3), -10.0)
    logits[0, :, 0] = 0.0
    logits[0, 0, 1], logits[0, 1, 1], logits[0, 2, 2] = 10.0, 9.0, 8.0  # boxes 0, 1 overlap (class 0)
    post = SSDPostProcessor(score_thr=0.5, topk=10, nms_iou_thr=0.5, max_per_img=10)
    res = post(logits, torch.zeros(1, 3, 4), anchors, DeltaXYWHCoder(), (40, 40),
               [dict(img_shape=(40, 40), ori_shape=(80, 20))])[0]
    assert res['labels'].tolist() == [0, 1]
    torch.testing.assert_close(res['bboxes'], torch.tensor([[0.0, 0, 5, 20], [15, 60, 20, 80]]))
    assert SSDPostProcessor(score_thr=0.5, max_per_img=1)(logits, torch.zeros(1, 3, 4), anchors, DeltaXYWHCoder(),
                                                          (40, 40))[0]['labels'].tolist() == [0]
    # a label map that hides class 0 and renames class 1 to 7
    res = post(logits, torch.zeros(1, 3, 4), anchors, DeltaXYWHCoder(), (40, 40), None, torch.tensor([-1, 7]))[0]
    assert res['labels'].tolist() == [7]


# --- the Detector -----------------------------------------------------------------------------------------------
def test_detector_modes_visualize_and_save_result(tmp_path):
    from pycocotools.coco import COCO
    model = tiny_detector(classes=['a', 'b', 'c'], cat_ids=[3, 5, 9],
                          post_processor=dict(score_thr=0.0, topk=5, max_per_img=7)).eval()
    img = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    sample = dict(img=np.ascontiguousarray(img[::1, ::1][:64, :64]), meta=dict(img_id=42, ori_shape=(90, 120)))
    data = model.data_preprocessor([sample], False)
    logits, deltas = model(data['inputs'], mode='tensor')
    assert logits.shape[-1] == 4 and deltas.shape[-1] == 4 and logits.shape[1] == deltas.shape[1]
    result = model(**data, mode='predict')[0]
    assert result['bboxes'].dtype == np.float32 and result['bboxes'].shape == (7, 4)
    assert result['labels'].dtype == np.int64 and result['scores'].dtype == np.float32
    assert result['bboxes'][:, 2].max() <= 120 + 1e-4 and result['bboxes'][:, 3].max() <= 90 + 1e-4
    picture = model.visualize(img, result, score_thr=0.0)
    assert picture.shape == img.shape and picture.dtype == np.uint8 and (picture != img).any()
    path, = model.save_result(result, str(tmp_path / 'frame_0001'))
    records = json.load(open(path))
    assert len(records) == 7 and {r['category_id'] for r in records} <= {3, 5, 9} and records[0]['image_id'] == 42
    gt = COCO()
    gt.dataset = dict(images=[dict(id=42, height=90, width=120)], annotations=[],
                      categories=[dict(id=i, name=n) for i, n in zip([3, 5, 9], 'abc')])
    gt.createIndex()
    assert len(gt.loadRes(path).getAnnIds()) == 7
    with pytest.raises(ValueError, match='class names'):
        tiny_detector(classes=['a'])
