"""TimmBackbone: timm feature extractors under SSDLite and Mobile DeepLab, local weights, freezing, and the
message when timm is missing."""
import sys

import pytest
import timm  # the dev extra's test oracle: a broken import must fail the tests, not skip them
import torch

from backbones import TimmBackbone
from tasks.detection import Detector
from tasks.segmentation import Segmentor


def test_contract_and_equality_with_timm():
    ours = TimmBackbone('mobilenetv3_small_050', out_indices=(3, 4)).eval()
    theirs = timm.create_model('mobilenetv3_small_050', features_only=True, out_indices=(3, 4)).eval()
    theirs.load_state_dict(ours.model.state_dict())
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        feats, ref = ours(x), theirs(x)
    assert ours.strides == [16, 32] and ours.out_channels == theirs.feature_info.channels()
    for f, r, c, s in zip(feats, ref, ours.out_channels, ours.strides):
        assert f.shape == (1, c, 96 // s, 64 // s)
        torch.testing.assert_close(f, r)


def test_pretrained_file_is_loaded_without_download(tmp_path):
    source = timm.create_model('resnet10t', pretrained=False)  # a classifier checkpoint, head included
    with torch.no_grad():
        source.conv1[0].weight.normal_()
    path = tmp_path / 'resnet10t.pth'
    torch.save(source.state_dict(), path)
    ours = TimmBackbone('resnet10t', pretrained_file=str(path))
    torch.testing.assert_close(ours.model.conv1[0].weight, source.conv1[0].weight)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        TimmBackbone('resnet10t', pretrained_file=str(tmp_path / 'missing.pth'))


def test_frozen_stages_and_norm_eval():
    model = TimmBackbone('resnet10t', frozen_stages=1, norm_eval=True).train()
    assert not model.model.conv1[0].weight.requires_grad and not model.model.layer1[0].conv1.weight.requires_grad
    assert model.model.layer2[0].conv1.weight.requires_grad
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_missing_timm_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, 'timm', None)
    with pytest.raises(ImportError, match='pip install timm'):
        TimmBackbone('resnet10t')


def _steps(model, samples, steps=5):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    data = model.data_preprocessor(samples, True)
    losses = []
    for _ in range(steps):
        loss = sum(model(**data, mode='loss').values())
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def test_under_ssdlite():
    import numpy as np
    model = Detector(backbone=dict(type='TimmBackbone', model_name='mobilenetv3_small_050', out_indices=(3, 4)),
                     neck=dict(type='SSDLiteNeck', extra_channels=(64, 32, 32, 16)), head=dict(type='SSDLiteHead'),
                     num_classes=2, data_preprocessor=dict(type='DetDataPreprocessor', mean=[127.5] * 3,
                                                           std=[127.5] * 3))
    rng = np.random.default_rng(0)
    samples = [dict(img=rng.integers(0, 255, (96, 96, 3), dtype=np.uint8),
                    gt_bboxes=np.array([[10, 10, 50, 60]], np.float32), gt_labels=np.array([1]),
                    meta=dict(img_id=i, ori_shape=(96, 96), img_shape=(96, 96))) for i in range(2)]
    losses = _steps(model, samples)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_under_deeplab_with_dilation():
    import numpy as np
    model = Segmentor(num_classes=3, backbone=dict(type='TimmBackbone', model_name='resnet10t', out_indices=(4,),
                                                   output_stride=16),
                      neck=dict(type='ASPP', channels=32), head=dict(type='DeepLabHead'))
    assert model.backbone.strides == [16]
    rng = np.random.default_rng(0)
    samples = [dict(img=rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
                    gt_seg=rng.integers(0, 3, (64, 64)).astype(np.int64),
                    meta=dict(img_id=i, ori_shape=(64, 64))) for i in range(2)]
    losses = _steps(model, samples)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
