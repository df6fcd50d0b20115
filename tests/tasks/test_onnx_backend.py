"""Inferencer(backend='onnxruntime'): the network in onnxruntime, pre- and post-processing of the torch model;
results equal the torch backend for every task."""
from pathlib import Path

import numpy as np
import pytest
import torch

from data.evaluators.image_quality import psnr
from data.io import read_rgb
from data.transforms.color import rgb_to_ycbcr
from data.transforms.resize import bicubic_resize, mod_crop
from tasks import Inferencer, build_model, load_config
from tests.segmentation.seg_testutils import load_tool as tool
from tests.tasks.test_fusion import randomise_norms
from tools.export import export

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / 'tests' / 'assets'


def spread_class_logits(model) -> None:
    """Random SSD heads give ~1/91 to every class (ties everywhere); larger class logits give distinct scores."""
    with torch.no_grad():
        for pred in model.head.cls_preds:
            pred.pointwise.weight.mul_(30.0)


def export_config(cfg, shape, path, checkpoint=None, dynamic=True, tweak=None) -> str:
    """Random (BN-randomised) or checkpoint weights exported with the TorchScript exporter (fast); returns the
    path of the torch checkpoint holding the same weights."""
    model = build_model(cfg, checkpoint)
    if checkpoint is None:
        randomise_norms(model)
        if tweak is not None:
            tweak(model)
        checkpoint = str(path.with_suffix('.pth'))
        torch.save({'state_dict': model.state_dict()}, checkpoint)
    export(model, shape, str(path), opset=17, dynamic=dynamic, legacy=True)
    return checkpoint


def both(cfg, shape, tmp_path, checkpoint=None, dynamic=True, tweak=None):
    onnx = tmp_path / 'model.onnx'
    checkpoint = export_config(cfg, shape, onnx, checkpoint, dynamic, tweak)
    return Inferencer(cfg, checkpoint), Inferencer(cfg, str(onnx), backend='onnxruntime', threads=1)


def test_super_resolution_psnr_equal(tmp_path):
    cfg = load_config(REPO / 'configs' / 'espcn_x3_500e_t91.py')
    torch_inf, ort_inf = both(cfg, (1, 32, 32), tmp_path, str(REPO / 'checkpoints' / 'espcn_x3_t91.pth'))
    hr = mod_crop(read_rgb(str(ASSETS / 'sr' / 'Set5' / 'butterfly.png')), 3)
    lr = bicubic_resize(hr, (hr.shape[0] // 3, hr.shape[1] // 3))
    a, b = torch_inf(lr), ort_inf(lr)
    gt = rgb_to_ycbcr(hr.astype(np.float64))[..., 0]
    p_torch, p_ort = psnr(a['y'].astype(np.float64), gt, 3), psnr(b['y'].astype(np.float64), gt, 3)
    assert p_torch > 25  # the trained weights
    assert abs(p_torch - p_ort) < 0.01
    np.testing.assert_allclose(b['y'], a['y'], atol=1e-2)
    assert ort_inf.model.onnx_network.session is not None


@pytest.mark.slow
def test_detection_matched(tmp_path):
    """Head outputs and default boxes equal; detections matched (same label, box and score to 1e-4).

    Random weights tie: many overlapping boxes score the same to 1e-7, and onnxruntime's last-bit differences
    make NMS keep one or the other (measured: 0 to 31 of the 100 best swapped, depending on the seed), so the
    detections are required to match for the most part, the raw outputs exactly."""
    cfg = load_config(REPO / 'configs' / 'ssdlite_mobilenetv3-large_660e_coco.py')
    cfg.model.post_processor = dict(max_per_img=100)
    torch_inf, ort_inf = both(cfg, (3, 320, 320), tmp_path, dynamic=False, tweak=spread_class_logits)
    image = str(ASSETS / 'detection' / 'coco8' / 'images' / 'val' / '000000000036.jpg')
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        for ours, ref in zip(ort_inf.model._head_and_anchors(x), torch_inf.model._head_and_anchors(x)):
            torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    a, b = torch_inf(image), ort_inf(image)
    assert len(a['scores']) == len(b['scores']) == 100 and a['scores'].max() > 0.5
    matched = 0
    for box, score, label in zip(a['bboxes'], a['scores'], a['labels']):
        same = ((b['labels'] == label) & (np.abs(b['scores'] - score) <= 1e-4)
                & (np.abs(b['bboxes'] - box).max(1) <= 1e-4 * max(1.0, np.abs(box).max())))
        matched += bool(same.any())
    assert matched >= 60
    assert np.abs(np.sort(a['scores']) - np.sort(b['scores'])).max() < 1e-2
    # a fixed-size export names the size it takes; a .onnx file needs backend='onnxruntime'
    with pytest.raises(ValueError, match=r'takes inputs of shape 1x3x320x320, got 1x3x64x64'):
        ort_inf.model(torch.zeros(1, 3, 64, 64), mode='tensor')
    with pytest.raises(ValueError, match="backend 'torch' needs a torch checkpoint"):
        Inferencer(cfg, str(tmp_path / 'model.onnx'))


def test_segmentation_labels_equal(tmp_path):
    cfg = load_config(REPO / 'configs' / 'lraspp_mobilenetv3-large_30e_coco-voc.py')
    cfg.infer_pipeline = []  # the photo at its own size (160 x 107)
    image = str(ASSETS / 'segmentation' / 'street_160.jpg')

    def spread(model):
        """Random features hardly vary over the image (one class everywhere): a 300x stronger classifier,
        centred on this image's mean feature, gives many classes and boundaries."""
        with torch.no_grad():
            batch = model.data_preprocessor([dict(img=read_rgb(image), meta=dict(ori_shape=(107, 160)))], False)
            mean = model.extract_features(batch['inputs'])[model.head.low_index].mean(dim=(0, 2, 3))
            conv = model.head.low_classifier
            conv.weight.mul_(300.0), conv.bias.copy_(-(conv.weight[:, :, 0, 0] @ mean))
    torch_inf, ort_inf = both(cfg, (3, 64, 64), tmp_path, tweak=spread)
    a, b = torch_inf(image)['seg'], ort_inf(image)['seg']
    assert a.shape == b.shape == (107, 160)
    assert len(np.unique(a)) > 5
    assert (a == b).mean() > 0.999  # identical except on near ties


def test_depth_equal(tmp_path):
    cfg = load_config(REPO / 'configs' / 'fastdepth_mobilenetv1_20e_nyu.py')

    image = str(ASSETS / 'depth' / 'rgb.png')

    def positive(model):
        """The last conv + BN + ReLU normalised on this image (BN statistics of its conv output, shift 3): depth
        about 3 +- 1 m, varying over the image instead of clamped to 0.001 m everywhere."""
        conv, bn = model.head.final[0], model.head.final[1]
        seen = []
        hook = conv.register_forward_hook(lambda mod, args, out: seen.append(out))
        with torch.no_grad():
            model(**model.data_preprocessor([dict(img=read_rgb(image), meta={})], False), mode='tensor')
            hook.remove()
            bn.running_mean.copy_(seen[0].mean(dim=(0, 2, 3))), bn.running_var.copy_(seen[0].var(dim=(0, 2, 3)))
            bn.weight.fill_(1.0), bn.bias.fill_(3.0)
    torch_inf, ort_inf = both(cfg, (3, 224, 224), tmp_path, dynamic=False, tweak=positive)
    a, b = torch_inf(image)['depth'], ort_inf(image)['depth']
    assert a.std() > 0.1 and ((a > 0.001) & (a < 10)).mean() > 0.5  # mostly not clamped
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * np.abs(a).max())


def test_classification_equal(tmp_path):
    cfg = load_config(REPO / 'configs' / 'classifier_mobilenetv2_1x_imagenet.py')
    torch_inf, ort_inf = both(cfg, (3, 224, 224), tmp_path, dynamic=False)
    image = str(ASSETS / 'depth' / 'rgb.png')
    a, b = torch_inf(image), ort_inf(image)
    assert a['label'] == b['label']
    np.testing.assert_allclose(b['scores'], a['scores'], rtol=1e-4, atol=1e-6)


def test_volumetric_equal(tmp_path):
    cfg = load_config(REPO / 'configs' / 'unet3d_revmbconv_20e_synthetic.py')
    torch_inf, ort_inf = both(cfg, (4, 32, 32, 32), tmp_path)
    volume = np.random.default_rng(0).standard_normal((4, 40, 36, 32)).astype(np.float32)
    a, b = torch_inf(volume), ort_inf(volume)
    keys = [k for k in a if isinstance(a[k], np.ndarray)]
    assert keys
    for k in keys:
        if a[k].dtype.kind == 'f':
            np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5)
        else:
            assert (a[k] == b[k]).mean() > 0.999


@pytest.mark.slow
@pytest.mark.parametrize('legacy,threshold_first', [(True, True), (True, False), (False, True)])
def test_detection_with_nms_in_graph_equals_predict(tmp_path, legacy, threshold_first):
    """tools/export.py --with-nms: decoding + class-wise NMS in the ONNX graph, run by onnxruntime alone, gives the
    predict path's detections (in the network input's frame); TorchScript exporter with the score threshold before
    (default) or after NMS, and the dynamo exporter (opset 18) with the threshold before NMS (a boolean mask)."""
    import onnxruntime as ort
    from tasks.detection.nms_export import DetectorWithNMS, match_detections, unpad
    model = build_model(REPO / 'configs' / 'ssdlite_mobilenetv3-large_660e_coco.py')
    randomise_norms(model)
    spread_class_logits(model)
    wrapper = DetectorWithNMS(model, (320, 320), max_det=50, threshold_first=threshold_first)
    path = str(tmp_path / 'nms.onnx')
    export(model, (3, 320, 320), path, opset=17 if legacy else 18, legacy=legacy, wrapper=wrapper)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == ['output0', 'output1', 'output2', 'output3']
    for seed in (1, 2):
        x = torch.from_numpy(np.random.default_rng(seed).standard_normal((1, 3, 320, 320)).astype(np.float32))
        with torch.no_grad():
            reference = {k: v[:50] for k, v in model.predict(x, None)[0].items()}
            eager = unpad(*[t.numpy() for t in wrapper(x)])
        raw = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        assert raw[0].shape == (50, 4) and raw[1].shape == (50,) and raw[2].dtype == np.int64
        ours = unpad(*raw)
        assert len(ours['scores']) == len(eager['scores']) == len(reference['scores']) == 50
        for result in (eager, ours):
            matched, tied = match_detections(result, reference)
            assert matched + tied == 50 and matched >= 40, (matched, tied)
        assert np.all(np.diff(ours['scores']) <= 0)  # best first
    # padding: a score threshold no box passes leaves num_dets = 0 and labels -1
    model.post_processor.score_thr = 1.1
    none = DetectorWithNMS(model, (320, 320), max_det=5)(x)
    assert none[3].item() == 0 and (none[2] == -1).all() and (none[1] == 0).all()


@pytest.mark.slow
def test_tools_run_the_onnxruntime_backend(tmp_path):
    """benchmark.py and infer.py --backend onnxruntime, and --fuse, on the bundled ESPCN x3."""
    cfg, ckpt = str(REPO / 'configs' / 'espcn_x3_500e_t91.py'), str(REPO / 'checkpoints' / 'espcn_x3_t91.pth')
    onnx = tmp_path / 'espcn.onnx'
    export(build_model(cfg, ckpt), (1, 32, 32), str(onnx), opset=17, dynamic=True, legacy=True)
    report = tool('benchmark').main([cfg, '--shape', '1', '48', '48', '--runs', '2', '--warmup', '1', '--threads', '1',
                                     '--backend', 'onnxruntime', '--onnx', str(onnx), '--json'])
    assert report['backend'] == 'onnxruntime' and report['tensor']['median_ms'] > 0 and 'error' not in report['predict']
    fused = tool('benchmark').main([cfg, '--shape', '1', '48', '48', '--runs', '2', '--warmup', '1', '--fuse',
                                    '--json'])
    assert fused['fused'] and fused['params'] == report['params']
    with pytest.raises(ValueError, match='--backend onnxruntime needs --onnx'):
        tool('benchmark').main([cfg, '--backend', 'onnxruntime'])
    image = str(ASSETS / 'images' / 'bus_lr_x3.png')
    infer = tool('infer')
    written = infer.main([cfg, str(onnx), '--input', image, '--output', str(tmp_path / 'ort'), '--save-raw',
                          '--backend', 'onnxruntime', '--threads', '1'])
    reference = infer.main([cfg, ckpt, '--input', image, '--output', str(tmp_path / 'torch'), '--save-raw'])
    raw = [p for p in written if '/raw/' in p.replace('\\', '/')]
    raw_ref = [p for p in reference if '/raw/' in p.replace('\\', '/')]
    assert raw and raw_ref
    a, b = read_rgb(raw_ref[0]).astype(int), read_rgb(raw[0]).astype(int)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1  # uint8 rounding of equal float outputs
