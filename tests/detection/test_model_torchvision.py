"""Equivalence with torchvision's ``ssdlite320_mobilenet_v3_large`` after weight conversion, and ONNX export.

torchvision's network is given Kaiming-initialised convolutions and random BatchNorm statistics so that every
layer, the preprocessing and the resize visibly change the output (with its default 0.03-std init the input
barely reaches the head and a wrong preprocessing would go unnoticed).
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.detection import ssdlite320_mobilenet_v3_large

from backbones.converters import WEIGHT_CONVERTERS
from data.io import read_rgb
from tasks import Inferencer, load_config

CONFIG = 'configs/ssdlite_mobilenetv3-large_660e_coco.py'
IMAGE = 'detection/coco8/images/val/000000000042.jpg'  # 478 x 640, resized to 320 x 320 by both


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads are several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def torchvision_model():
    torch.manual_seed(0)
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
            elif isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1)
    return model.eval()


@pytest.fixture(scope='module')
def converted_checkpoint(torchvision_model, tmp_path_factory):
    state = WEIGHT_CONVERTERS['ssdlite320_mobilenet_v3_large'](torchvision_model.state_dict())
    path = tmp_path_factory.mktemp('ssdlite') / 'converted.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    return str(path)


@pytest.fixture(scope='module')
def image():
    return read_rgb(Path(__file__).resolve().parents[1] / 'assets' / IMAGE)


@pytest.fixture(scope='module')
def reference(torchvision_model, image):
    """torchvision's own detections on ``image`` (its transform, network and post-processing)."""
    with torch.no_grad():
        return torchvision_model([torch.from_numpy(image).permute(2, 0, 1).float() / 255])[0]


def test_converted_weights_give_torchvision_detections(torchvision_model, converted_checkpoint, reference, image,
                                                       repo, assets):
    cfg = load_config(repo / CONFIG)
    cfg.model.label_map = None  # all 90 head classes, labels = torchvision's - 1
    cfg.model.classes = cfg.model.cat_ids = None
    ours = Inferencer(cfg, converted_checkpoint)  # the config's infer_pipeline and preprocessing
    assert sum(p.numel() for p in ours.model.parameters()) == sum(p.numel() for p in torchvision_model.parameters())
    ref = reference
    result = ours(str(assets / IMAGE))  # read from the file by the model, like tools/infer.py
    assert len(ref['scores']) == 300 and len(result['scores']) == 300
    np.testing.assert_array_equal(result['labels'] + 1, ref['labels'].numpy())
    np.testing.assert_allclose(result['scores'], ref['scores'].numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(result['bboxes'], ref['boxes'].numpy(), rtol=0, atol=1e-4)
    # the raw tensors agree too
    x = ours.model.data_preprocessor([ours.sample(image)], False)['inputs']
    images, _ = torchvision_model.transform([torch.from_numpy(image).permute(2, 0, 1).float() / 255])
    torch.testing.assert_close(x, images.tensors, rtol=0, atol=1e-6)
    with torch.no_grad():
        head = torchvision_model.head(list(torchvision_model.backbone(images.tensors).values()))
        logits, deltas = ours.model(x, mode='tensor')
    torch.testing.assert_close(logits, head['cls_logits'], rtol=0, atol=1e-4)
    torch.testing.assert_close(deltas, head['bbox_regression'], rtol=0, atol=1e-4)


def test_coco_label_map_keeps_torchvision_scores(converted_checkpoint, reference, image, repo):
    """With the config's label map: torchvision's detections of the 80 real classes, renamed to 0..79."""
    cfg = load_config(repo / CONFIG)
    ours = Inferencer(cfg, converted_checkpoint)
    ref = reference
    result = ours(image)
    cat_ids = np.array(cfg.model.cat_ids)
    real = np.isin(ref['labels'].numpy(), cat_ids)  # torchvision label = COCO category id
    n = int(real.sum())
    assert 0 < n < 300
    np.testing.assert_array_equal(cat_ids[result['labels'][:n]], ref['labels'].numpy()[real])
    np.testing.assert_allclose(result['scores'][:n], ref['scores'].numpy()[real], rtol=0, atol=1e-4)
    np.testing.assert_allclose(result['bboxes'][:n], ref['boxes'].numpy()[real], rtol=0, atol=1e-4)


def test_onnx_export_of_the_tensor_outputs(repo, tmp_path):
    spec = importlib.util.spec_from_file_location('export_tool', repo / 'tools' / 'export.py')
    export_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export_tool)
    from tasks.detection import Detector
    model = Detector(backbone=dict(type='MobileNetV3', arch='small', width_mult=0.5, out_indices=(4, 6)),
                     neck=dict(type='SSDLiteNeck', extra_channels=(64, 32, 32, 16)), head=dict(type='SSDLiteHead'),
                     num_classes=3).eval()
    path = str(tmp_path / 'ssdlite.onnx')
    example, outputs = export_tool.export(model, (3, 128, 128), path, legacy=True)
    assert [tuple(o.shape) for o in outputs] == [(1, 6 * (64 + 16 + 4 + 1 + 1 + 1), 4)] * 2
    diffs = export_tool.check_with_onnxruntime(path, example, outputs, rtol=1e-4)
    assert len(diffs) == 2
