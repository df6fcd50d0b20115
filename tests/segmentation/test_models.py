"""Segmentation models: torchvision equivalence through the converters, paper sizes, heads, loss, predict, ONNX."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large, lraspp_mobilenet_v3_large

from heads.deeplab import DeepLabHead
from heads.lraspp import LRASPPHead
from necks.aspp import ASPP
from tasks import build_model
from tasks.segmentation import SegCrossEntropy, Segmentor

from seg_testutils import REPO, load_tool, randomize_batchnorm, tiny_segmentor

V3_DEEPLAB = REPO / 'configs' / 'deeplabv3_mobilenetv3-large_30e_coco-voc.py'
V3_LRASPP = REPO / 'configs' / 'lraspp_mobilenetv3-large_30e_coco-voc.py'
V2_DEEPLAB = REPO / 'configs' / 'deeplabv3_mobilenetv2_30k_voc-aug.py'


@pytest.mark.parametrize('arch,config', [('deeplabv3_mobilenet_v3_large', V3_DEEPLAB),
                                         ('lraspp_mobilenet_v3_large', V3_LRASPP)])
def test_torchvision_checkpoint_gives_same_logits(tmp_path, arch, config):
    if arch.startswith('deeplab'):
        reference = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True)
    else:
        reference = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)
    randomize_batchnorm(reference)
    reference.eval()
    torch.save(reference.state_dict(), tmp_path / 'tv.pth')
    load_tool('convert_weights').main(['--arch', arch, str(tmp_path / 'tv.pth'), str(tmp_path / 'ours.pth')])
    ours = build_model(config, str(tmp_path / 'ours.pth'))  # strict: every key must match
    x = torch.randn(2, 3, 72, 88)
    with torch.no_grad():
        expected = reference(x)
        logits, aux = ours._logits(x, with_aux=True)
    assert logits.shape == (2, 21, 72, 88)
    assert expected['out'].abs().max() > 1e-2
    torch.testing.assert_close(logits, expected['out'], rtol=1e-5, atol=1e-5)
    if 'aux' in expected:
        torch.testing.assert_close(aux, expected['aux'], rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())


def test_mobile_deeplabv3_matches_the_paper_size():
    """MobileNetV2 paper, Table 7 (MNet V2*, OS16, no ASPP): 2.11M parameters, 2.75B MAdds at 513x513."""
    model = build_model(V2_DEEPLAB)
    params = sum(p.numel() for p in model.parameters())
    assert params == 2_113_557 and round(params / 1e6, 2) == 2.11
    assert len(model.backbone.features) == 18  # the 1280-channel last conv is not part of the model
    assert model.backbone.strides == [16] and model.backbone.out_channels == [320]


def test_aspp_branches_and_output_stride():
    full = ASPP([40, 320], channels=16, dilations=(6, 12, 18))
    assert len(full.branches) == 5 and full.out_channels == [16]
    assert [b[0].dilation for b in list(full.branches)[1:4]] == [(6, 6), (12, 12), (18, 18)]
    lite = ASPP([320], channels=16)
    assert len(lite.branches) == 2
    out = full([torch.randn(2, 40, 9, 9), torch.randn(2, 320, 5, 7)])
    assert out[0].shape == (2, 16, 5, 7)
    model = tiny_segmentor(backbone=dict(type='MobileNetV2', width_mult=0.25, out_indices=(-2,), output_stride=8))
    model.eval()
    feats = model.extract_features(torch.randn(1, 3, 64, 64))
    assert feats[0].shape[-2:] == (8, 8)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_heads_check_their_inputs():
    with pytest.raises(ValueError, match='two input feature maps'):
        LRASPPHead([960], num_classes=21)
    with pytest.raises(ValueError, match='in_index'):
        ASPP([320], in_index=3)
    with pytest.raises(ValueError, match='at least one'):
        DeepLabHead([], num_classes=21)
    with pytest.raises(ValueError, match='shallow to deep'):
        tiny_segmentor(backbone=dict(type='MobileNetV3', arch='large', width_mult=0.35, out_indices=('layer16', 'layer4')))


def test_cross_entropy_ignore_weights_and_ohem():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6)
    target = torch.randint(0, 4, (2, 5, 6))
    target[0, 0, :] = 255
    manual = F.cross_entropy(logits.permute(0, 2, 3, 1)[target != 255], target[target != 255])
    torch.testing.assert_close(SegCrossEntropy()(logits, target), manual)
    weights = [1.0, 2.0, 0.5, 3.0]
    torch.testing.assert_close(SegCrossEntropy(class_weight=weights)(logits, target),
                               F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=255))
    # OHEM keeping only the 5 hardest pixels: the mean of their losses
    per_pixel = F.cross_entropy(logits, target, ignore_index=255, reduction='none')[target != 255]
    prob = logits.softmax(1).gather(1, target.clamp(max=3)[:, None])[:, 0][target != 255]
    hardest = per_pixel[prob.argsort()[:5]]
    torch.testing.assert_close(SegCrossEntropy(ohem_thresh=1e-9, ohem_min_kept=5)(logits, target), hardest.mean())
    with pytest.raises(ValueError, match='outside'):
        SegCrossEntropy()(logits, torch.full((2, 5, 6), 7))


def test_loss_mode_with_aux_head():
    model = tiny_segmentor(aux_head=dict(type='FCNHead', in_index=0), aux_weight=0.25)
    model.train()
    rng = np.random.default_rng(0)
    samples = [dict(img=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
                    gt_seg=rng.integers(0, 3, (48, 64)), meta=dict(file=f'{i}.jpg')) for i in range(2)]
    data = model.data_preprocessor(samples, True)
    torch.manual_seed(1)  # same dropout masks in both calls
    losses = model(**data, mode='loss')
    torch.manual_seed(1)
    assert set(losses) == {'loss_ce', 'loss_aux'}
    _, aux = model._logits(data['inputs'], with_aux=True)
    target = torch.stack([s['seg_target'] for s in data['data_samples']])
    torch.testing.assert_close(losses['loss_aux'], 0.25 * F.cross_entropy(aux, target, ignore_index=255))
    losses['loss_ce'].backward()


def test_preprocessor_pads_and_predict_returns_original_size():
    model = tiny_segmentor(test_cfg=dict(scales=(0.75, 1.0), flip=True)).eval()
    rng = np.random.default_rng(0)
    samples = [dict(img=rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), meta=dict(ori_shape=(80, 100))),
               dict(img=rng.integers(0, 255, (33, 61, 3), dtype=np.uint8), meta=dict(ori_shape=(33, 61)))]
    data = model.data_preprocessor(samples, False)
    assert data['inputs'].shape == (2, 3, 40, 61)
    assert torch.all(data['inputs'][1, :, 33:, :] == 0)  # padded with the mean
    results = model(**data, mode='predict')
    assert results[0]['seg'].shape == (80, 100) and results[0]['seg'].dtype == np.int64
    assert results[1]['seg'].shape == (33, 61)
    assert results[1]['seg'].min() >= 0 and results[1]['seg'].max() < 3
    bad = dict(img=samples[0]['img'], gt_seg=np.zeros((10, 10), np.int64), meta=dict(file='bad.jpg'))
    with pytest.raises(ValueError, match='bad.jpg.*mask size'):
        model.data_preprocessor([bad], True)


def test_export_to_onnx_matches_onnxruntime(tmp_path):
    export = load_tool('export')
    model = tiny_segmentor(num_classes=5, backbone=dict(type='MobileNetV3', arch='large', width_mult=0.35,
                                                        output_stride=16, out_indices=('layer4', 'layer16')),
                           neck=None, head=dict(type='LRASPPHead', channels=16)).eval()
    randomize_batchnorm(model)
    example, reference = export.export(model, (3, 64, 96), str(tmp_path / 'm.onnx'), legacy=True)
    assert reference[0].shape == (1, 5, 64, 96)
    diffs = export.check_with_onnxruntime(str(tmp_path / 'm.onnx'), example, reference, rtol=1e-4)
    assert max(diffs) < 1e-3
