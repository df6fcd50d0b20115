"""The onnxruntime backend for the YOLO detector and for ``tools/export.py --with-nms`` files: the Inferencer,
``tools/test.py --onnx``, ``tools/infer.py`` and ``tools/benchmark.py`` run them with the model's own inverse
mapping, and give the torch backend's detections one-to-one (label, score, box to 1e-4) on a real photo.

A randomised network gives nearly the same features everywhere (scores equal to 1e-7 across anchors and images:
ties everywhere), so the class predictors are made to act on their inputs standardised over real photos
(``standardise_inputs``). YOLO: LeYOLO-Nano of the coco8 config letterboxed to 96 x 96 (``tiny_yolo`` of
tests/detection/test_yolo_nms_export.py, then ``spread_yolo`` over the 8 coco8 photos). SSD: SSDLite320-MobileNetV3,
BatchNorms randomised, ``spread_ssd`` over the test photo."""
from pathlib import Path

import numpy as np
import pytest
import torch

from data.io import read_rgb
from tasks import Inferencer, build_model, load_config
from tasks.detection.nms_export import match_detections, with_nms
from tasks.onnx_backend import OnnxNetwork, is_nms_graph
from tests.detection.test_yolo_nms_export import assert_same_detections, tiny_yolo
from tests.segmentation.seg_testutils import load_tool as tool
from tests.tasks.test_fusion import randomise_norms
from tools.export import export

REPO = Path(__file__).resolve().parents[2]
COCO8 = REPO / 'tests' / 'assets' / 'detection' / 'coco8'
PHOTO = str(COCO8 / 'images' / 'val' / '000000000036.jpg')  # 481 x 640 (portrait)
YOLO_CONFIG = REPO / 'configs' / 'yolo_leyolo-n_coco8.py'
SIZE = 96


def first(result: dict, n: int) -> dict:
    return {k: (v[:n] if isinstance(v, np.ndarray) else v) for k, v in result.items()}


def standardise_inputs(convs, run, logit_std: float, bias: float) -> None:
    """Each 1x1 conv of ``convs`` made to act on its input standardised over what ``run()`` feeds it (per channel:
    minus the mean, over the standard deviation; N(0, 1) weights rescaled): logits of about N(bias, logit_std^2)
    that vary from image to image and anchor to anchor. A randomised network gives nearly the same features
    everywhere (scores equal to 1e-7 across anchors and images: ties everywhere); this spreads them."""
    seen = []
    hooks = [conv.register_forward_hook(lambda mod, args, out: seen.append(args[0])) for conv in convs]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        run()
        for hook in hooks:
            hook.remove()
        for conv, feat in zip(convs, seen):
            mean, std = feat.mean(dim=(0, 2, 3)), feat.std(dim=(0, 2, 3)).clamp(min=1e-3)
            weight = torch.randn(conv.weight.shape, generator=g) * logit_std / conv.in_channels ** 0.5
            conv.weight.copy_(weight / std[None, :, None, None])
            conv.bias.copy_(bias - conv.weight[:, :, 0, 0] @ mean)


def spread_yolo(model, cfg) -> None:
    """Class logits about N(-4, 2^2), standardised over the 8 coco8 photos letterboxed (``cfg.infer_pipeline``)."""
    inferencer = Inferencer(cfg)
    inferencer.model = model
    samples = [inferencer.sample(str(p)) for p in sorted(COCO8.glob('images/*/*.jpg'))]
    batch = model.data_preprocessor(samples, False)
    standardise_inputs([branch[-1] for branch in model.head.cls_branches],
                       lambda: model(batch['inputs'], mode='tensor'), 2.0, -4.0)


@pytest.fixture(scope='module')
def yolo(tmp_path_factory):
    """The config (letterbox 96), a checkpoint, a plain export and --with-nms exports (max_det 300 and 20)."""
    folder = tmp_path_factory.mktemp('yolo_nms')
    cfg = load_config(YOLO_CONFIG)
    cfg.infer_pipeline = [dict(type='LetterBox', size=SIZE, pad_val=114)]
    model = tiny_yolo(-10.0)
    spread_yolo(model, cfg)
    ckpt = str(folder / 'yolo.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    files = dict(plain=str(folder / 'plain.onnx'), nms=str(folder / 'nms.onnx'), nms20=str(folder / 'nms20.onnx'))
    export(model, (3, SIZE, SIZE), files['plain'], opset=17, legacy=True)
    for key, max_det in (('nms', 300), ('nms20', 20)):
        export(model, (3, SIZE, SIZE), files[key], opset=17, legacy=True, wrapper=with_nms(model, (SIZE, SIZE), max_det))
    return cfg, ckpt, files


def test_yolo_plain_and_nms_graph_equal_torch(yolo):
    cfg, ckpt, files = yolo
    reference = Inferencer(cfg, ckpt)(PHOTO)
    assert len(reference['scores']) == 300 and reference['bboxes'][:, 3].max() > 400  # original pixels
    assert len(np.unique(reference['scores'])) == 300
    plain = Inferencer(cfg, files['plain'], backend='onnxruntime', threads=1)
    assert plain.model.onnx_max_det is None and not is_nms_graph(plain.model.onnx_network)
    assert_same_detections(plain(PHOTO), reference)
    nms = Inferencer(cfg, files['nms'], backend='onnxruntime', threads=1)
    assert is_nms_graph(nms.model.onnx_network) and nms.model.onnx_max_det == 300
    result = nms(PHOTO)
    assert_same_detections(result, reference)
    assert result['img_id'] == reference['img_id'] == '000000000036'
    capped = Inferencer(cfg, files['nms20'], backend='onnxruntime', threads=1)(PHOTO)
    assert_same_detections(capped, first(reference, 20))  # the 20 best
    # the tensor mode of an NMS graph is the graph's four outputs (what benchmark.py times)
    boxes, scores, labels, num_dets = nms.model(torch.zeros(1, 3, SIZE, SIZE), mode='tensor')
    assert boxes.shape == (300, 4) and labels.dtype == torch.int64 and num_dets.shape == (1,)


def test_batch_of_a_batch_one_file(yolo):
    """A batch-1 file takes a batch of images one at a time (tools/test.py batches 4)."""
    cfg, ckpt, files = yolo
    x = torch.rand(3, 3, SIZE, SIZE)
    plain = OnnxNetwork(files['plain'])
    together = plain.run(x)
    alone = [plain.run(x[i:i + 1]) for i in range(3)]
    for i, outputs in enumerate(alone):
        for a, b in zip(together, outputs):
            np.testing.assert_array_equal(a[i:i + 1], b)
    model = Inferencer(cfg, files['nms'], backend='onnxruntime').model
    reference = build_model(cfg, ckpt)
    with torch.no_grad():
        ours, ref = model.predict(x, None), reference.predict(x, None)
    assert len(ours) == 3
    for a, b in zip(ours, ref):
        assert_same_detections(a, b)


def test_tools_take_an_nms_graph(yolo, tmp_path):
    """tools/test.py --onnx: the --with-nms file (max_det 300 = max_per_img) gives the plain file's COCO metrics;
    the cap is logged, and max_det 20 is warned about (fewer than COCO's 100). infer.py and benchmark.py run it."""
    cfg, ckpt, files = yolo
    test = tool('test')

    def evaluate(onnx: str, name: str):
        work_dir = tmp_path / name
        metrics = test.main([str(YOLO_CONFIG), '--onnx', onnx, '--work-dir', str(work_dir), '--threads', '1',
                             '--cfg-options', f'test_dataloader.dataset.pipeline.0.size={SIZE}'])
        return metrics, '\n'.join(p.read_text() for p in work_dir.rglob('*.log'))
    plain, plain_log = evaluate(files['plain'], 'plain')
    nms, nms_log = evaluate(files['nms'], 'nms')
    assert plain['coco/bbox_mAP_50'] > 0 and plain['coco/bbox_AR_100'] > 0  # not all zeros
    assert nms == plain
    assert 'detections per image' not in plain_log
    assert 'at most 300 detections per image' in nms_log and 'fewer than the 100' not in nms_log
    capped, capped_log = evaluate(files['nms20'], 'nms20')
    assert 'keeps at most 20 detections per image' in capped_log and 'fewer than the 100' in capped_log
    assert capped['coco/bbox_AR_100'] < plain['coco/bbox_AR_100']  # measured 0.014 < 0.157
    config96 = tmp_path / 'yolo96.py'  # infer.py reads the config's infer_pipeline: letterbox to the file's 96
    config96.write_text(f"_base_ = [{str(YOLO_CONFIG)!r}]\ninfer_pipeline = [dict(type='LetterBox', size={SIZE}, "
                        f"pad_val=114)]\n")
    written = tool('infer').main([str(config96), files['nms'], '--input', PHOTO, '--output', str(tmp_path / 'out'),
                                  '--save-raw', '--backend', 'onnxruntime', '--threads', '1'])
    assert any(p.endswith('detections.json') for p in written)
    report = tool('benchmark').main([str(config96), '--shape', '3', str(SIZE), str(SIZE), '--runs', '2',
                                     '--warmup', '1', '--threads', '1', '--backend', 'onnxruntime', '--onnx',
                                     files['nms'], '--json'])
    assert report['tensor']['median_ms'] > 0 and 'error' not in report['predict']
    assert report['nms_in_graph_max_det'] == 300


def spread_ssd(model, image: np.ndarray) -> None:
    """SSD class logits (background column included) about N(0, 2^2), standardised over the photo's anchors."""
    batch = model.data_preprocessor([dict(img=image, meta={})], False)
    standardise_inputs([p.pointwise for p in model.head.cls_preds], lambda: model(**batch, mode='tensor'), 2.0, 0.0)


def test_ssd_nms_graph_equals_torch(tmp_path):
    """SSDLite320: the --with-nms graph (max_det 100) through the Inferencer gives the torch backend's 100 best,
    boxes scaled back to the photo by ``SSDPostProcessor.to_original``.

    Near ties remain with random weights even spread: anchors along a uniform strip of the photo (its left edge)
    score within 1e-5 of each other, and overlapping ones suppress each other in NMS in an order that onnxruntime's
    last-bit differences may flip (measured on the 8 coco8 photos: 1 to 10 of the 100 best swapped for an
    equal-label, equal-score neighbour). So: all but a few matched exactly, the rest such swaps."""
    cfg = load_config(REPO / 'configs' / 'ssdlite_mobilenetv3-large_660e_coco.py')
    model = build_model(cfg)
    randomise_norms(model)
    spread_ssd(model, read_rgb(PHOTO))
    ckpt = str(tmp_path / 'ssd.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    path = str(tmp_path / 'ssd_nms.onnx')
    export(model, (3, 320, 320), path, opset=17, legacy=True, wrapper=with_nms(model, (320, 320), 100))
    reference = Inferencer(cfg, ckpt)(PHOTO)
    assert len(reference['scores']) == 300 and reference['bboxes'][:, 3].max() > 400  # original pixels
    top = first(reference, 100)
    assert len(np.unique(top['scores'])) >= 95 and len(np.unique(top['labels'])) > 5  # distinct, varied
    nms = Inferencer(cfg, path, backend='onnxruntime', threads=1)
    assert nms.model.onnx_max_det == 100
    ours = nms(PHOTO)
    assert len(ours['scores']) == 100 and np.all(np.diff(ours['scores']) <= 0)
    matched, tied = match_detections(ours, top, 1e-4)
    assert matched >= 90 and matched + tied >= 97, (matched, tied)
    assert ours['bboxes'].min() >= 0 and ours['bboxes'][:, 2].max() <= 481 and ours['bboxes'][:, 3].max() <= 640


def test_nms_graph_errors(yolo):
    """A non-detector config, and an image letterboxed to another size than the file's, are named errors."""
    _, _, files = yolo
    with pytest.raises(ValueError, match='needs a detector config'):
        Inferencer(REPO / 'configs' / 'espcn_x3_500e_t91.py', files['nms'], backend='onnxruntime')
    inferencer = Inferencer(YOLO_CONFIG, files['nms'], backend='onnxruntime')  # the config letterboxes to 320
    with pytest.raises(ValueError, match=r'takes inputs of shape 1x3x96x96, got 1x3x320x320; an --with-nms file'):
        inferencer(PHOTO)
