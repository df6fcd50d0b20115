"""The new backbones under their task configs: each config builds, exports to ONNX (TorchScript exporter, the fast
one here; onnxruntime equal to torch) and learns: twenty optimiser steps on a fixed small batch of drawn images cut the loss at least in half. The
FasterNet/MobileNetV4 + LeNeck YOLO configs are checked for building and export (their backbones learn under SSDLite)."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks import TASKS
from tasks.api import load_config

REPO = Path(__file__).resolve().parents[2]
DETECTION = ['ssdlite_mobiledet-cpu_400k_coco', 'ssdlite_fasternet-t0_660e_coco',
             'ssdlite_mobilenetv4-conv-small_660e_coco']
YOLO = ['yolo_fasternet-t0-leneck_500e_coco', 'yolo_mobilenetv4-conv-small-leneck_500e_coco']  # export only
SEGMENTATION = ['deeplabv3_inception-next-atto_30k_voc-aug']


def build(name: str):
    cfg = load_config(str(REPO / 'configs' / f'{name}.py'))
    cfg.model.backbone.pop('pretrained', None)  # ImageNet weights are not shipped; learning from scratch here
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mobilevision'):
        return TASKS.build(cfg.model)


def detection_batch(n: int = 4, size: int = 128):
    sys.path.insert(0, str(REPO / 'tests' / 'detection'))
    from test_model_learning import draw_scenes
    return draw_scenes(n, size)


def segmentation_batch(n: int = 4, size: int = 64):
    sys.path.insert(0, str(REPO / 'tests' / 'segmentation'))
    from seg_testutils import draw_shapes
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        img, seg = draw_shapes(rng, size)
        samples.append(dict(img=img, gt_seg=seg, meta=dict(img_id=i, ori_shape=(size, size))))
    return samples


def learn(model, samples, steps: int, lr: float) -> tuple:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    data = model.data_preprocessor(samples, True)
    losses = []
    for _ in range(steps):
        loss = sum(model(**data, mode='loss').values())
        assert torch.isfinite(loss)
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses[0], min(losses[-3:])


@pytest.mark.slow
@pytest.mark.parametrize('name,batch', [(n, lambda: detection_batch(2, 96)) for n in DETECTION] +
                         [(n, lambda: segmentation_batch(2, 64)) for n in SEGMENTATION])
def test_config_learns(name, batch):
    torch.manual_seed(0)
    model = build(name)
    first, last = learn(model, batch(), steps=20, lr=3e-3)
    assert last < 0.5 * first, (first, last)


def _export_tool():
    spec = importlib.util.spec_from_file_location('_tool_export', REPO / 'tools' / 'export.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize('name,shape', [(n, (3, 96, 96)) for n in DETECTION + YOLO] +
                         [(n, (3, 64, 64)) for n in SEGMENTATION])
def test_config_exports_to_onnx(name, shape, tmp_path):
    pytest.importorskip('onnxruntime')
    diffs = _export_tool().main([str(REPO / 'configs' / f'{name}.py'), '--output', str(tmp_path / 'm.onnx'),
                                 '--shape', *map(str, shape), '--legacy'])
    assert diffs and max(diffs) < 1e-3
