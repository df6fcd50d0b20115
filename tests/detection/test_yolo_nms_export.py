"""tools/export.py --with-nms for the YOLO detector: DFL decoding, sigmoid scores and class-wise NMS in one ONNX
graph, run by onnxruntime alone, give ``YOLODetector.predict``'s detections one-to-one (label, score, box to 1e-4).

The model is LeYOLO-Nano of the coco8 config at 96 x 96 (189 anchor points, 80 classes: 15,120 pairs) with
randomised BatchNorms and class logits spread (weights N(0, 1)) so that scores are distinct; the class bias picks
how many pairs pass ``score_thr`` 0.001: bias -3 about 14,000 (the 300-detection cut decides), bias -10 about 560
(the threshold after NMS decides: fewer than 300 detections)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks import build_model
from tasks.detection.nms_export import DetectorWithNMS, match_detections, unpad, with_nms
from tasks.detection.yolo.nms_export import YOLODetectorWithNMS
from tests.segmentation.seg_testutils import load_tool
from tests.tasks.test_fusion import randomise_norms
from tools.export import export

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs' / 'yolo_leyolo-n_coco8.py'
SIZE = 96


def tiny_yolo(bias: float, **post):
    """The coco8 LeYOLO-Nano, randomised BNs, class logits N(0, 1) + ``bias``; ``post`` overrides the post-processor."""
    model = build_model(CONFIG)
    randomise_norms(model)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for cls in model.head.cls_branches:
            cls[-1].weight.normal_(0.0, 1.0, generator=g)
            cls[-1].bias.fill_(bias)
    for key, value in post.items():
        setattr(model.post_processor, key, value)
    return model.eval()


def inputs(seeds=(1, 2)):
    for seed in seeds:
        yield torch.from_numpy(np.random.default_rng(seed).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32))


def assert_same_detections(ours: dict, reference: dict) -> None:
    """One-to-one: as many detections, each reference one with an equal (label, score, box to 1e-4) in ours."""
    n = len(reference['scores'])
    assert len(ours['scores']) == n > 0
    matched, tied = match_detections(ours, reference, 1e-4)
    assert (matched, tied) == (n, 0)
    assert np.all(np.diff(ours['scores']) <= 0)  # best first


def run_onnx(path: str, x: torch.Tensor):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})


def check_export(model, tmp_path, legacy: bool, max_det: int, threshold_first: bool = True) -> None:
    wrapper = with_nms(model, (SIZE, SIZE), max_det)
    assert isinstance(wrapper, YOLODetectorWithNMS) and wrapper.threshold_first
    wrapper.threshold_first = threshold_first
    path = str(tmp_path / ('legacy.onnx' if legacy else 'dynamo.onnx'))
    export(model, (3, SIZE, SIZE), path, opset=17 if legacy else 18, legacy=legacy, wrapper=wrapper)
    for x in inputs():
        with torch.no_grad():
            reference = model.predict(x, None)[0]
        raw = run_onnx(path, x)
        assert raw[0].shape == (max_det, 4) and raw[1].shape == (max_det,) and raw[2].dtype == np.int64
        ours = unpad(*raw)
        assert_same_detections(ours, reference)
        assert (raw[2][len(ours['scores']):] == -1).all() and (raw[1][len(ours['scores']):] == 0).all()
        assert ours['bboxes'].min() >= 0 and ours['bboxes'].max() <= SIZE  # clipped to the input, as predict


@pytest.mark.parametrize('threshold_first', [True, False])
def test_threshold_torchscript_exporter(tmp_path, threshold_first):
    """Few pairs pass the threshold: NMS over those (default) or over all 15,120 pairs, then the threshold."""
    model = tiny_yolo(-10.0)
    check_export(model, tmp_path, legacy=True, max_det=300, threshold_first=threshold_first)
    with torch.no_grad():
        assert len(model.predict(next(inputs()), None)[0]['scores']) < 300  # the threshold decided, not the cut


def test_candidate_cap_torchscript_exporter(tmp_path):
    """max_nms 1000 < pairs over the threshold: the eager cap (best 1000 over 0.001) equals the graph's TopK 1000."""
    model = tiny_yolo(-3.0, max_nms=1000)
    assert YOLODetectorWithNMS(model, (SIZE, SIZE)).num_candidates == 1000
    check_export(model, tmp_path, legacy=True, max_det=300)
    with torch.no_grad():
        capped = len(model.predict(next(inputs()), None)[0]['scores'])
        model.post_processor.max_nms = 30000
        assert capped < len(model.predict(next(inputs()), None)[0]['scores']) == 300  # the cap decided


@pytest.mark.slow
def test_dynamo_exporter_opset18(tmp_path):
    """The torch.export-based exporter at opset 18 (about 13 s to export here)."""
    check_export(tiny_yolo(-10.0), tmp_path, legacy=False, max_det=300)


@pytest.mark.parametrize('post', [dict(multi_label=False), dict(class_agnostic=True), dict(iou_thr=0.3)])
def test_post_processor_options_in_torch(post):
    """Best-class-only, class-agnostic and another IoU threshold: the wrapper (in torch) equals predict."""
    model = tiny_yolo(-6.0, **post)
    wrapper = with_nms(model, (SIZE, SIZE), max_det=300)
    for x in inputs((3,)):
        with torch.no_grad():
            assert_same_detections(unpad(*[t.numpy() for t in wrapper(x)]), model.predict(x, None)[0])


def test_padding_and_max_det(tmp_path):
    """No pair passes (in torch and in onnxruntime: NMS over no box): num_dets 0, labels -1, zeros; max_det is
    capped by the post-processor's max_per_img."""
    model = tiny_yolo(-10.0, score_thr=1.0)
    wrapper = with_nms(model, (SIZE, SIZE), max_det=7)
    path = str(tmp_path / 'none.onnx')
    export(model, (3, SIZE, SIZE), path, opset=17, legacy=True, wrapper=wrapper)
    with torch.no_grad():
        in_torch = [t.numpy() for t in wrapper(next(inputs()))]
    for outputs in (in_torch, run_onnx(path, next(inputs()))):
        boxes, scores, labels, num_dets = outputs
        assert num_dets.tolist() == [0] and (labels == -1).all() and (scores == 0).all() and (boxes == 0).all()
        assert boxes.shape == (7, 4)
    assert with_nms(tiny_yolo(-3.0, max_per_img=20), (SIZE, SIZE), max_det=100).max_det == 20


def test_dispatch_by_type():
    with pytest.raises(TypeError, match='needs a YOLODetector'):
        YOLODetectorWithNMS(torch.nn.Conv2d(3, 3, 1), (SIZE, SIZE))
    with pytest.raises(TypeError, match='SSD-style Detector'):
        with_nms(torch.nn.Conv2d(3, 3, 1), (SIZE, SIZE))
    assert not isinstance(with_nms(tiny_yolo(-3.0), (SIZE, SIZE)), DetectorWithNMS)


def test_export_tool_with_nms(tmp_path, capsys):
    """tools/export.py CONFIG CKPT --with-nms on a YOLO checkpoint: exports, runs onnxruntime, matches predict."""
    tool = load_tool('export')
    ckpt = tmp_path / 'yolo.pth'
    torch.save({'state_dict': tiny_yolo(-10.0).state_dict()}, ckpt)
    out = tmp_path / 'det.onnx'
    matched = tool.main([str(CONFIG), str(ckpt), '--output', str(out), '--with-nms', '--shape', '3', str(SIZE),
                         str(SIZE), '--legacy', '--opset', '17', '--max-det', '300'])
    printed = capsys.readouterr().out
    assert out.exists() and 'boxes/scores/labels/num_dets (max 300)' in printed
    n = int(printed.split('predict path ')[1].split(';')[0])
    assert n > 0 and matched == [float(n)] and f'{n} detections, predict path {n}' in printed


def test_letterbox_inverse_gives_predict_on_the_photo():
    """The graph's boxes are in network-input pixels; the letterbox inverse documented in docs/deploy.md section 3
    (x = (x_in - pad_left) / scale_x, y = (y_in - pad_top) / scale_y, clipped to the photo) gives predict's boxes
    on the original photo (a 640 x 480 coco8 image letterboxed to 96 x 96)."""
    from data.io import read_rgb
    from data.transforms.letterbox import LetterBox
    image = REPO / 'tests' / 'assets' / 'detection' / 'coco8' / 'images' / 'train' / '000000000009.jpg'
    sample = LetterBox(SIZE)(dict(img=read_rgb(image), meta={}))
    meta = sample['meta']
    x = torch.from_numpy(np.ascontiguousarray(sample['img'])).permute(2, 0, 1)[None].float() / 255.0
    model = tiny_yolo(-10.0)
    with torch.no_grad():
        reference = model.predict(x, [dict(meta=meta)])[0]
        ours = unpad(*[t.numpy() for t in with_nms(model, (SIZE, SIZE), 300)(x)])
    (sx, sy), (left, top), (h, w) = meta['scale_factor'], meta['pad'], meta['ori_shape']
    assert (left, top) == (0, 12) and (h, w) == (480, 640)
    boxes = ours['bboxes'].copy()
    boxes[:, 0::2] = ((boxes[:, 0::2] - left) / sx).clip(0, w)
    boxes[:, 1::2] = ((boxes[:, 1::2] - top) / sy).clip(0, h)
    assert_same_detections(dict(ours, bboxes=boxes), reference)
