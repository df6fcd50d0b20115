"""FasterNet, InceptionNeXt and MobileNetV4-conv against timm (an independent implementation, random weights).

timm's model is built without weights, every BatchNorm gets random running statistics and affine parameters (so
that a wrong mapping cannot hide behind identity norms), its state dict goes through our converter with the strict
checks of ``convert_state_dict`` (every source tensor used, every target tensor filled), and our features / logits
must equal timm's to 1e-6.
"""
import pytest
import timm  # the dev extra's test oracle: a broken import must fail the tests, not skip them
import torch
from torch import nn

from backbones import FasterNet, InceptionNeXt, MobileNetV4
from backbones.converters import convert_state_dict
from tasks import build_model

BACKBONES = {'fasternet_t0': (FasterNet, {}), 'fasternet_t2': (FasterNet, {}),
             'inception_next_atto': (InceptionNeXt, {}), 'mobilenetv4_conv_small': (MobileNetV4, {}),
             'mobilenetv4_conv_medium': (MobileNetV4, {})}


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere, random BatchNorm statistics; returned in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith('running_mean') or name.endswith('bias'):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith('gamma') or name.endswith('layer_scale'):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.ndim == 1:  # norm scales
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) / fan_in ** 0.5)
    return model.eval()


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_features_equal_timm_features_only(name):
    cls, kwargs = BACKBONES[name]
    theirs = randomise(timm.create_model(name, pretrained=False, features_only=True))
    ours = cls(arch=name, **kwargs).eval()
    expected = {'backbone.' + k: v for k, v in ours.state_dict().items()}
    converted = convert_state_dict(name, theirs.state_dict(), f'timm {name}', expected)
    ours.load_state_dict({k[len('backbone.'):]: v for k, v in converted.items()}, strict=True)
    assert ours.out_channels == theirs.feature_info.channels()
    assert ours.strides == theirs.feature_info.reduction()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        got, want = ours(x), theirs(x)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert got[-1].abs().mean() > 1e-3  # the comparison is not between vanishing maps


@pytest.mark.parametrize('name', ['fasternet_t0', 'inception_next_atto', 'mobilenetv4_conv_small'])
def test_classifier_logits_equal_timm(name, tmp_path):
    from tools.convert_weights import main as convert
    theirs = randomise(timm.create_model(name, pretrained=False, num_classes=10), seed=1)
    src, dst = tmp_path / 'timm.pth', tmp_path / 'ours.pth'
    torch.save(theirs.state_dict(), src)
    convert(['--arch', name, str(src), str(dst)])
    from backbones.timm_converters import TIMM_CLASSIFIERS
    _, backbone, head = TIMM_CLASSIFIERS[name]
    ours = build_model(dict(default_scope='mobilevision', model=dict(
        type='ImageClassifier', backbone=backbone, head=dict(head, num_classes=10))), str(dst))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours._forward(x), theirs(x), rtol=1e-6, atol=1e-6)


def test_converter_refuses_a_checkpoint_of_another_family():
    theirs = timm.create_model('fasternet_t0', pretrained=False, features_only=True)
    with pytest.raises(ValueError, match='inception_next_atto'):
        convert_state_dict('inception_next_atto', theirs.state_dict(), 'fasternet.pth')


def test_dilated_inception_next_equals_timm_output_stride():
    for os_ in (16, 8):
        theirs = randomise(timm.create_model('inception_next_atto', pretrained=False, features_only=True,
                                             output_stride=os_))
        ours = InceptionNeXt(output_stride=os_).eval()
        converted = convert_state_dict('inception_next_atto', theirs.state_dict(), 'timm')
        ours.load_state_dict({k[len('backbone.'):]: v for k, v in converted.items()}, strict=True)
        assert ours.strides == theirs.feature_info.reduction()
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            for a, b in zip(ours(x), theirs(x)):
                torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
