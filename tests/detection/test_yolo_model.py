"""LeYOLO parts and the YOLO detector: sizes against the published network, shapes, the neck on MobileNetV3
features, the head's bias init, post-processing, the letterbox round trip and ONNX export."""
import math

import numpy as np
import pytest
import torch

from backbones import LeYOLONet, MobileNetV3, make_divisible
from data.transforms import LetterBox, letterbox_to_original
from heads import YOLOHead
from necks.leneck import LeNeck
from tasks import build_model, load_config
from tasks.detection.yolo import YOLODetector, YOLOPostProcessor, decode_head_outputs, to_original
from tasks.profiling import count_macs, count_parameters
from tests.segmentation.seg_testutils import load_tool


def tiny_detector(num_classes: int = 3) -> YOLODetector:
    return YOLODetector(backbone=dict(type='LeYOLONet', arch='n', width_mult=0.5, depths=(1, 1, 1)),
                        neck=dict(type='LeNeck', num_blocks=2, expand_ratio=2.0), head=dict(type='YOLOHead'),
                        num_classes=num_classes)


def test_width_rule_rounds_up_and_caps_before_scaling():
    assert make_divisible(32 * 1.33) == 40                            # MobileNet: nearest multiple of 8
    assert make_divisible(32, round_up=True, scale=1.33) == 48        # LeYOLO: 42.56 rounded up
    assert make_divisible(960, round_up=True, scale=1.33, cap=576) == 768  # 576 x 1.33 = 766.08 -> 768
    assert make_divisible(64, round_up=True) == 64
    assert LeYOLONet('s').out_channels == [48, 88, 128]
    assert LeYOLONet('n').out_channels == [32, 64, 96] and LeYOLONet('n').strides == [8, 16, 32]


def test_nano_size_matches_the_published_network(repo):
    model = build_model(load_config(repo / 'configs' / 'yolo_leyolo-n_500e_coco.py')).eval()
    params = count_parameters(model)
    assert abs(params / 1_108_960 - 1) < 0.01, params
    macs_320 = count_macs(lambda: model(torch.zeros(1, 3, 320, 320), mode='tensor'))
    assert abs(macs_320 / 307_977_600 - 1) < 0.02, macs_320
    # every layer is a convolution whose cost grows with the pixel count: 640 costs exactly 4 x 320
    macs_640 = count_macs(lambda: model(torch.zeros(1, 3, 640, 640), mode='tensor'))
    assert macs_640 == 4 * macs_320
    assert abs(macs_640 / 1_231_910_400 - 1) < 0.02, macs_640


def test_small_size_matches_the_published_network(repo):
    """Issue 14: LeYOLO-Small 1.90 M parameters and 2,130,188,800 MACs at 640 (same tolerances as Nano). 640 is
    exactly 4 x 320 (every layer is a convolution), so the count runs at 320 to stay fast."""
    model = build_model(load_config(repo / 'configs' / 'yolo_leyolo-s_500e_coco.py')).eval()
    params = count_parameters(model)
    assert abs(params / 1_900_000 - 1) < 0.01, params
    macs_640 = 4 * count_macs(lambda: model(torch.zeros(1, 3, 320, 320), mode='tensor'))
    assert abs(macs_640 / 2_130_188_800 - 1) < 0.02, macs_640


def test_medium_parameter_count_matches_the_published_network(repo):
    """LeYOLO-Medium: 2.37 M parameters (within 1%). Its MACs (2.663 G at 640) are 4.7% under the published
    2,794,124,800: a known miss, see docs/detection.md."""
    model = build_model(load_config(repo / 'configs' / 'yolo_leyolo-m_500e_coco.py')).eval()
    assert abs(count_parameters(model) / 2_370_000 - 1) < 0.01


def test_backbone_depths_and_frozen_stages():
    small, medium = LeYOLONet('s'), LeYOLONet('m')
    assert count_parameters(medium) > count_parameters(small)
    assert len(medium.features) - len(small.features) == 3  # one more block at /8, /16 and /32
    frozen = LeYOLONet('n', frozen_stages=2).train()
    assert not any(p.requires_grad for p in frozen.features[:frozen.stage_ends[2] + 1].parameters())
    assert all(p.requires_grad for p in frozen.features[frozen.stage_ends[2] + 1:].parameters())
    with pytest.raises(ValueError, match='arch'):
        LeYOLONet('x')


def test_tensor_mode_shapes_on_a_non_square_input():
    model = tiny_detector(num_classes=3).eval()
    maps = model(torch.randn(2, 3, 96, 128), mode='tensor')
    assert [tuple(m.shape) for m in maps] == [(2, 64 + 3, 12, 16), (2, 67, 6, 8), (2, 67, 3, 4)]


def test_leneck_takes_mobilenetv3_features_with_sppf():
    backbone = MobileNetV3('large', width_mult=0.5, out_indices=('stage2', 'stage4', 'stage5'))
    neck = LeNeck(backbone.out_channels, sppf=True, num_blocks=2)
    assert neck.sppf is not None and neck.out_channels == backbone.out_channels
    outs = neck(backbone(torch.randn(1, 3, 128, 96)))
    assert [tuple(o.shape) for o in outs] == [(1, c, 128 // s, 96 // s)
                                             for c, s in zip(backbone.out_channels, (8, 16, 32))]
    with pytest.raises(ValueError, match='three maps'):
        LeNeck([16, 32])


def test_head_bias_init():
    head = YOLOHead([16, 32, 64], num_classes=80, strides=(8, 16, 32))
    assert head.cls_channels == 80 and head.box_channels == 64  # max(c0, min(K, 100)), 4 x reg_max
    for box, cls, stride in zip(head.box_branches, head.cls_branches, (8, 16, 32)):
        assert torch.all(box[-1].bias == 1.0)
        assert torch.allclose(cls[-1].bias, torch.full((80,), math.log(5 / 80 / (640 / stride) ** 2)))
    assert YOLOHead([128, 128, 128], num_classes=3).cls_channels == 128


def test_postprocessor_multi_label_best_class_and_class_agnostic():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.8], [0.7, 0.0], [0.0005, 0.6]])
    multi = YOLOPostProcessor(score_thr=0.001, iou_thr=0.5)(boxes, scores)
    # box 0 keeps both classes; box 1 (class 0) is suppressed by box 0; box 2 only passes for class 1
    assert multi['scores'].tolist() == pytest.approx([0.9, 0.8, 0.6])
    assert multi['labels'].tolist() == [0, 1, 1]
    assert torch.equal(multi['bboxes'], boxes[[0, 0, 2]])
    best = YOLOPostProcessor(score_thr=0.001, iou_thr=0.5, multi_label=False)(boxes, scores)
    assert best['labels'].tolist() == [0, 1] and best['scores'].tolist() == pytest.approx([0.9, 0.6])
    agnostic = YOLOPostProcessor(score_thr=0.001, iou_thr=0.5, class_agnostic=True)(boxes, scores)
    assert agnostic['labels'].tolist() == [0, 1] and agnostic['scores'].tolist() == pytest.approx([0.9, 0.6])
    top1 = YOLOPostProcessor(score_thr=0.001, iou_thr=0.5, max_per_img=1)(boxes, scores)
    assert top1['scores'].tolist() == pytest.approx([0.9])
    empty = YOLOPostProcessor(score_thr=0.95)(boxes, scores)
    assert empty['bboxes'].shape == (0, 4)


def test_postprocessor_keeps_classes_apart_for_boxes_outside_the_image():
    """Decoded boxes may have negative corners; batched_nms' class offset (label x (max + 1)) assumes coordinates
    >= 0, and without a shift the class-1 box below lands on the class-0 box and is suppressed by it."""
    boxes = torch.tensor([[250, 250, 400, 400], [-150, -150, 4, 4]], dtype=torch.float32)
    scores = torch.tensor([[0.9, 0.0], [0.0, 0.8]])
    out = YOLOPostProcessor(score_thr=0.001, iou_thr=0.7)(boxes, scores)
    assert out['labels'].tolist() == [0, 1] and out['scores'].tolist() == pytest.approx([0.9, 0.8])
    assert torch.equal(out['bboxes'], boxes)


def test_letterbox_and_its_exact_inverse():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (301, 517, 3), dtype=np.uint8)
    boxes = np.array([[0, 0, 517, 301], [10.5, 20.25, 100, 200], [400, 7, 516, 300]], np.float32)
    out = LetterBox(320)(dict(img=img, gt_bboxes=boxes.copy(), meta=dict(img_id=1)))
    meta = out['meta']
    new_h = round(301 * 320 / 517)
    top = (320 - new_h) // 2
    assert out['img'].shape == (320, 320, 3) and meta['img_shape'] == (320, 320) and meta['ori_shape'] == (301, 517)
    assert meta['pad'] == (0, top) and meta['scale_factor'] == (320 / 517, new_h / 301)
    assert (out['img'][:top] == 114).all() and (out['img'][top + new_h:] == 114).all()
    assert not (out['img'][top:top + new_h] == 114).all()
    # the first box is the whole image: it becomes the content area of the canvas
    np.testing.assert_allclose(out['gt_bboxes'][0], [0, top, 320, top + new_h], atol=1e-4)
    np.testing.assert_allclose(letterbox_to_original(out['gt_bboxes'], meta), boxes, atol=1e-4)
    from data.evaluators.coco_metric import rescale_to_original  # the evaluators' ground truth goes back too
    np.testing.assert_allclose(rescale_to_original(out['gt_bboxes'], meta), boxes, atol=1e-4)
    back = to_original(torch.from_numpy(out['gt_bboxes']), meta, (320, 320))
    np.testing.assert_allclose(back.numpy(), boxes, atol=1e-4)
    # a box reaching into the padding is clipped to the image
    clipped = to_original(torch.tensor([[-5.0, 0.0, 330.0, 320.0]]), meta, (320, 320))
    np.testing.assert_allclose(clipped.numpy(), [[0, 0, 517, 301]])


def test_predict_returns_boxes_in_original_coordinates():
    model = tiny_detector(num_classes=2).eval()
    model.post_processor = YOLOPostProcessor(score_thr=0.0, iou_thr=1.0, max_per_img=50)  # no suppression
    sample = LetterBox(64)(dict(img=np.full((40, 80, 3), 90, np.uint8), meta=dict(img_id=7)))
    batch = model.data_preprocessor([sample], False)
    with torch.no_grad():
        result = model(**batch, mode='predict')[0]
        boxes, scores = decode_head_outputs(model(batch['inputs'], mode='tensor'), model.strides, 16, 2)
    assert result['img_id'] == 7 and len(result['bboxes']) == 50
    # the best detection is the best (point, class) of the decoded maps, mapped back through the letterbox
    best = int(scores[0].max(1).values.argmax())
    assert result['scores'][0] == pytest.approx(float(scores[0].max()), abs=1e-6)
    expected = to_original(boxes[0, best:best + 1], sample['meta'], (64, 64))[0].numpy()
    np.testing.assert_allclose(result['bboxes'][0], expected, atol=1e-4)
    assert (result['bboxes'] >= 0).all() and result['bboxes'][:, 0::2].max() <= 80
    assert result['bboxes'][:, 1::2].max() <= 40


def test_loss_mode_gives_the_three_terms_and_learns_nothing_from_no_objects():
    model = tiny_detector(num_classes=2).train()
    samples = [dict(img=np.zeros((64, 64, 3), np.uint8), gt_bboxes=np.array([[8, 8, 40, 40]], np.float32),
                    gt_labels=np.array([1])),
               dict(img=np.zeros((64, 64, 3), np.uint8), gt_bboxes=np.zeros((0, 4), np.float32),
                    gt_labels=np.zeros(0, np.int64))]
    losses = model(**model.data_preprocessor(samples, True), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_box', 'loss_dfl'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    empty = model(**model.data_preprocessor(samples[1:], True), mode='loss')
    assert empty['loss_box'] == 0 and empty['loss_dfl'] == 0 and empty['loss_cls'] > 0
    with pytest.raises(ValueError, match='labels must lie'):
        model(**model.data_preprocessor([dict(samples[0], gt_labels=np.array([5]))], True), mode='loss')


@pytest.mark.slow
def test_onnx_export_matches_onnxruntime(repo, tmp_path):
    export_tool = load_tool('export')
    model = build_model(load_config(repo / 'configs' / 'yolo_leyolo-n_coco8.py')).eval()
    path = str(tmp_path / 'leyolo.onnx')
    example, outputs = export_tool.export(model, (3, 96, 128), path, legacy=True)
    assert [tuple(o.shape) for o in outputs] == [(1, 144, 12, 16), (1, 144, 6, 8), (1, 144, 3, 4)]
    diffs = export_tool.check_with_onnxruntime(path, example, outputs, rtol=1e-4)
    assert len(diffs) == 3


def test_bias_warmup_hook_sets_and_restores_the_bias_lr():
    from types import SimpleNamespace
    from tasks.detection.yolo import YOLOBiasWarmupHook
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    groups = [dict(params=[p], lr=0.004) for p in model.parameters()]  # one group per parameter, as mmengine builds
    optimizer = torch.optim.SGD(groups, lr=0.004)
    runner = SimpleNamespace(model=model, optim_wrapper=SimpleNamespace(optimizer=optimizer),
                             train_dataloader=[0] * 10, iter=5)
    hook = YOLOBiasWarmupHook(warmup_epochs=2, warmup_bias_lr=0.1, min_warmup_iters=1)  # 20 warm-up iterations
    hook.before_train_iter(runner, 0)
    names = [n for n, _ in model.named_parameters()]
    lrs = {n: g['lr'] for n, g in zip(names, optimizer.param_groups)}
    assert lrs['0.bias'] == pytest.approx(0.1 * (1 - 5 / 20) + 0.004) and lrs['1.bias'] == lrs['0.bias']
    assert lrs['0.weight'] == 0.004 and lrs['1.weight'] == 0.004
    hook.after_train_iter(runner, 0)
    assert all(g['lr'] == 0.004 for g in optimizer.param_groups)  # the schedulers' values come back
    runner.iter = 20
    hook.before_train_iter(runner, 0)
    assert all(g['lr'] == 0.004 for g in optimizer.param_groups)  # warm-up over


def test_yolo_ema_decay_rises_as_published():
    from tasks.detection.yolo import YOLOExpEMA
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = YOLOExpEMA(model, decay=0.9999, tau=2000)
    ema.update_parameters(model)  # the first update copies
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update_parameters(model)  # updates = 1: d = 0.9999 x (1 - exp(-1 / 2000))
    d = 0.9999 * (1 - math.exp(-1 / 2000))
    assert ema.module.weight.item() == pytest.approx(1 - d, rel=1e-6)
    assert ema.decay_at(10 ** 6) == pytest.approx(0.9999)
