"""MobileNetV2/V3 backbones: feature shapes, strides, dilation, freezing, torchvision equivalence."""
import pytest
import torch
import torchvision
from torch import nn

from backbones import BACKBONES, MobileNetV2, MobileNetV3
from backbones.converters import WEIGHT_CONVERTERS, load_backbone_weights, torchvision_mobilenet_to_ours

ARCHS = [('v2', {}), ('v3', {'arch': 'large'}), ('v3', {'arch': 'small'})]


def make(kind, **kwargs):
    return MobileNetV2(**kwargs) if kind == 'v2' else MobileNetV3(**kwargs)


@pytest.mark.parametrize('kind,extra', ARCHS)
@pytest.mark.parametrize('output_stride', [8, 16, 32])
def test_every_feature_point_has_the_announced_shape(kind, extra, output_stride):
    probe = make(kind, width_mult=0.5, **extra)
    model = make(kind, width_mult=0.5, out_indices=range(len(probe.feature_points)), output_stride=output_stride,
                 **extra).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert len(feats) == len(model.out_channels) == len(model.strides) == len(probe.feature_points)
    for f, c, s in zip(feats, model.out_channels, model.strides):
        assert f.shape == (1, c, 64 // s, 64 // s)
        assert s <= output_stride
    assert model.strides == sorted(model.strides)
    assert max(model.strides) == output_stride


def test_mobilenet_v2_feature_table_matches_the_paper():
    m = MobileNetV2()
    assert m.feature_names == ['stage0', 'stage1', 'stage2', 'stage3', 'stage4', 'layer14_expand', 'stage5',
                               'stage6', 'last_conv']
    assert [p.channels for p in m.feature_points] == [16, 24, 32, 64, 96, 576, 160, 320, 1280]
    assert [p.stride for p in m.feature_points] == [2, 4, 8, 16, 16, 16, 32, 32, 32]
    ssd = MobileNetV2(out_indices=(5, 8))
    assert ssd.out_channels == [576, 1280] and ssd.strides == [16, 32]


def test_out_indices_must_be_increasing_and_in_range():
    with pytest.raises(ValueError, match='out_indices'):
        MobileNetV2(out_indices=(3, 1))
    with pytest.raises(ValueError, match='out_indices'):
        MobileNetV2(out_indices=(42,))
    with pytest.raises(ValueError, match='output_stride'):
        MobileNetV2(output_stride=4)


@pytest.mark.parametrize('name', ['mobilenet_v2', 'mobilenet_v3_large', 'mobilenet_v3_small'])
def test_converted_torchvision_weights_give_the_same_features(name):
    tv = getattr(torchvision.models, name)(weights=None).eval()
    ours = MobileNetV2() if name == 'mobilenet_v2' else MobileNetV3(arch=name.split('_')[-1])
    converted = WEIGHT_CONVERTERS[name](tv.state_dict())
    backbone_sd = {k[len('backbone.'):]: v for k, v in converted.items() if k.startswith('backbone.')}
    ours.load_state_dict(backbone_sd, strict=True)
    ours.eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[-1], tv.features(x), rtol=1e-5, atol=1e-5)
    assert {k for k in converted if k.startswith('head.')}


def test_dilated_v3_equals_torchvision_dilated():
    tv = torchvision.models.mobilenet_v3_large(weights=None, dilated=True).eval()
    ours = MobileNetV3('large', output_stride=16).eval()
    sd = torchvision_mobilenet_to_ours(tv.state_dict(), prefix='')
    ours.load_state_dict({k: v for k, v in sd.items() if not k.startswith('head.')}, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[-1], tv.features(x), rtol=1e-5, atol=1e-5)


def test_init_weights_reads_a_torchvision_checkpoint(tmp_path):
    tv = torchvision.models.mobilenet_v2(weights=None)
    path = tmp_path / 'mobilenet_v2.pth'
    torch.save(tv.state_dict(), path)
    ours = MobileNetV2(pretrained=str(path))
    ours.init_weights()
    torch.testing.assert_close(ours.features[3].expand[0].weight, tv.features[3].conv[0][0].weight)
    missing, unexpected = load_backbone_weights(MobileNetV2(), str(path))
    assert not missing and not unexpected


def test_mobilenet_v2_with_classifier_has_the_papers_size():
    from tasks import build_model
    model = build_model('configs/classifier_mobilenetv2_1x_imagenet.py')
    assert sum(p.numel() for p in model.parameters()) == 3_504_872  # torchvision's mobilenet_v2 count
    tv = torchvision.models.mobilenet_v2(weights=None)
    assert sum(p.numel() for p in tv.parameters()) == 3_504_872


def test_frozen_stages_and_norm_eval():
    m = MobileNetV2(width_mult=0.35, frozen_stages=1, norm_eval=True)
    m.train()
    frozen_until = m.stage_ends[1]
    for i, layer in enumerate(m.features):
        grads = {p.requires_grad for p in layer.parameters()}
        assert grads == ({False} if i <= frozen_until else {True})
    assert all(not bn.training for bn in m.modules() if isinstance(bn, nn.BatchNorm2d))


def test_registered_and_plain_construction_agree():
    a = BACKBONES.build(dict(type='MobileNetV3', arch='small', width_mult=0.5, out_indices=(1, 6)))
    b = MobileNetV3(arch='small', width_mult=0.5, out_indices=(1, 6))
    assert a.out_channels == b.out_channels and a.strides == b.strides


def test_layer_taps_select_any_layer_output():
    m = MobileNetV3('large', out_indices=('layer4', 'last_conv'), output_stride=16).eval()
    assert m.out_channels == [40, 960] and m.strides == [8, 16]
    tv = torchvision.models.mobilenet_v3_large(weights=None, dilated=True).eval()
    m.load_state_dict({k: v for k, v in torchvision_mobilenet_to_ours(tv.state_dict(), prefix='').items()
                       if not k.startswith('head.')})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m(x)[0], tv.features[:5](x))
    with pytest.raises(ValueError, match='layer<N>'):
        MobileNetV3('large', out_indices=('layer99',))


@pytest.mark.parametrize('arch', ['large', 'small'])
def test_reduced_tail_equals_torchvision(arch):
    tv = getattr(torchvision.models, f'mobilenet_v3_{arch}')(weights=None, reduced_tail=True).eval()
    ours = MobileNetV3(arch, reduced_tail=True).eval()
    sd = torchvision_mobilenet_to_ours(tv.state_dict(), prefix='')
    ours.load_state_dict({k: v for k, v in sd.items() if not k.startswith('head.')}, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[-1], tv.features(x), rtol=1e-5, atol=1e-5)
