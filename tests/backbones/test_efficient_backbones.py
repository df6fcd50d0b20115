"""FasterNet, InceptionNeXt, MobileNetV4, MobileDet: the backbone contract and the papers' sizes.

Sizes are counted with tasks.profiling (torch.utils.flop_counter, as tools/benchmark.py) on the classifier configs
at 224x224.
"""
import itertools
from pathlib import Path

import pytest
import torch
from torchvision.ops.misc import Conv2dNormActivation

from backbones import BACKBONES, FasterNet, InceptionNeXt, MobileDet, MobileNetV4
from backbones.mobilenet_v4 import FusedInvertedBottleneck
from tasks import build_model
from tasks.profiling import count_macs, count_parameters as params

REPO = Path(__file__).resolve().parents[2]
ALL = [(FasterNet, dict(arch='fasternet_t0')), (InceptionNeXt, {}), (MobileNetV4, {}),
       (MobileNetV4, dict(arch='mobilenetv4_conv_medium')), (MobileDet, {})]


def macs(model, shape) -> int:
    return count_macs(lambda: model(torch.zeros(1, *shape)))


@pytest.mark.parametrize('cls,kwargs', ALL)
def test_every_feature_point_has_the_announced_shape(cls, kwargs):
    probe = cls(**kwargs)
    model = cls(**kwargs, out_indices=tuple(probe.feature_names)).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 96))
    assert len(feats) == len(probe.feature_names)
    for f, c, s in zip(feats, model.out_channels, model.strides):
        assert f.shape == (1, c, 64 // s, 96 // s)
    assert model.strides[-1] == 32 and model.strides == sorted(model.strides)
    assert probe.strides[-1] == 32  # the default maps end at stride 32


@pytest.mark.parametrize('cls,kwargs', ALL)
def test_frozen_stages_and_norm_eval(cls, kwargs):
    model = cls(**kwargs, frozen_stages=1, norm_eval=True).train()
    frozen = model.features[:model.stage_ends[1] + 1]
    assert all(not p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad for p in model.features[model.stage_ends[1] + 1:].parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    x = torch.randn(2, 3, 64, 64)
    model(x)[-1].sum().backward()  # trains the rest; frozen BN statistics do not move
    before = {k: v.clone() for k, v in model.state_dict().items() if 'running_mean' in k}
    model(x)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)


def test_registry_builds_them_by_name():
    for name in ('FasterNet', 'InceptionNeXt', 'MobileNetV4', 'MobileDet'):
        assert BACKBONES.build(dict(type=name)).out_channels


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='arch'):
        FasterNet(arch='fasternet_t9')
    with pytest.raises(ValueError, match='output_stride'):
        InceptionNeXt(output_stride=4)
    with pytest.raises(ValueError, match='out_indices'):
        MobileNetV4(out_indices=('stage2', 'stage0'))


@pytest.mark.parametrize('output_stride', [16, 8])
def test_mobilenet_v4_dilation_keeps_the_resolution(output_stride):
    model = MobileNetV4(output_stride=output_stride).eval()
    assert model.strides[-1] == output_stride
    assert model(torch.randn(1, 3, 64, 64))[-1].shape[-1] == 64 // output_stride


# (config, published params (M), published MACs (G) at 224)
PAPER = [('fasternet-t0', 3.9, 0.34), ('fasternet-t1', 7.6, 0.85), ('fasternet-t2', 15.0, 1.91),
         ('inception-next-atto', 4.2, 0.5), ('mobilenetv4-conv-small', 3.8, 0.2)]


def _close(ours: float, published: float) -> bool:
    """Within 1%, or within the rounding of the published figure (half a unit of its last digit)."""
    text = repr(published)
    half_unit = 0.5 * 10 ** -(len(text.split('.')[1]) if '.' in text else 0)
    return abs(ours - published) <= max(0.01 * published, half_unit)


@pytest.mark.parametrize('name,p,m', PAPER)
def test_classifier_size_matches_the_paper(name, p, m):
    model = build_model(str(REPO / 'configs' / f'classifier_{name}_imagenet.py'))
    n, mac = params(model) / 1e6, macs(model._forward, (3, 224, 224)) / 1e9
    assert _close(n, p), (n, p)
    assert _close(mac, m), (mac, m)


# MNv4-Conv-M as the paper's architecture table gives it (Qin et al. 2024, Appendix D, Tab. 12), row by row:
# (block, DW K1, DW K2, expanded dim, output dim, stride), 0 for "-". Conv2D rows put their kernel in the K2 column.
MNV4_CONV_M_TAB12 = [
    ('Conv2D', 0, 3, 0, 32, 2),
    ('FusedIB', 0, 3, 128, 48, 2),
    ('ExtraDW', 3, 5, 192, 80, 2), ('ExtraDW', 3, 3, 160, 80, 1),
    ('ExtraDW', 3, 5, 480, 160, 2), ('ExtraDW', 3, 3, 640, 160, 1), ('ExtraDW', 3, 3, 640, 160, 1),
    ('ExtraDW', 3, 5, 640, 160, 1), ('ExtraDW', 3, 3, 640, 160, 1), ('ConvNext', 3, 0, 640, 160, 1),
    ('FFN', 0, 0, 320, 160, 1), ('ConvNext', 3, 0, 640, 160, 1),
    ('ExtraDW', 5, 5, 960, 256, 2), ('ExtraDW', 5, 5, 1024, 256, 1), ('ExtraDW', 3, 5, 1024, 256, 1),
    ('ExtraDW', 3, 5, 1024, 256, 1), ('FFN', 0, 0, 1024, 256, 1), ('ConvNext', 3, 0, 1024, 256, 1),
    ('ExtraDW', 3, 5, 512, 256, 1), ('ExtraDW', 5, 5, 1024, 256, 1), ('FFN', 0, 0, 1024, 256, 1),
    ('FFN', 0, 0, 1024, 256, 1), ('ConvNext', 5, 0, 512, 256, 1),
    ('Conv2D', 0, 1, 0, 960, 1),
]  # then AvgPool, Conv2D 1x1 960 -> 1280, Conv2D 1x1 1280 -> 1000
MNV4_CONV_M_STAGES = {'stem': 1, 'stage0': 1, 'stage1': 2, 'stage2': 8, 'stage3': 11, 'last_conv': 1}
UIB_NAMES = {(True, True): 'ExtraDW', (True, False): 'ConvNext', (False, True): 'IB', (False, False): 'FFN'}


def _table_row(block) -> tuple:
    """One of our MobileNetV4 blocks written as a row of the paper's table."""
    if isinstance(block, Conv2dNormActivation):
        conv = block[0]
        return 'Conv2D', 0, conv.kernel_size[0], 0, conv.out_channels, conv.stride[0]
    if isinstance(block, FusedInvertedBottleneck):
        conv = block.expand[0]
        return 'FusedIB', 0, conv.kernel_size[0], conv.out_channels, block.out_channels, conv.stride[0]
    start, mid = block.start, block.mid
    strided = mid if mid is not None else start
    return (UIB_NAMES[start is not None, mid is not None], 0 if start is None else start[0].kernel_size[0],
            0 if mid is None else mid[0].kernel_size[0], block.expand[0].out_channels, block.out_channels,
            1 if strided is None else strided[0].stride[0])


def _count_table(rows, size: int) -> list:
    """(parameters, MACs) of each row by the plain formulas: conv weights + BatchNorm scale and shift (every conv of
    the network has BN and no bias), MACs = weights x output pixels. A UIB's stride sits on its middle depthwise
    conv when it has one, else on the first (the paper's TF code, ``middle_dw_downsample=True``)."""
    out, channels, hw = [], 3, size
    for name, k1, k2, expanded, width, stride in rows:
        convs = []  # (in, out, kernel, groups, output size)
        hw_out = -(-hw // stride)
        if name == 'Conv2D':
            convs.append((channels, width, k2, 1, hw_out))
        elif name == 'FusedIB':
            convs += [(channels, expanded, k2, 1, hw_out), (expanded, width, 1, 1, hw_out)]
        else:
            hw_mid = hw if k2 else hw_out  # the spatial size after the first depthwise conv
            if k1:
                convs.append((channels, channels, k1, channels, hw_mid))
            convs.append((channels, expanded, 1, 1, hw_mid))
            if k2:
                convs.append((expanded, expanded, k2, expanded, hw_out))
            convs.append((expanded, width, 1, 1, hw_out))
        weights = [cout * cin // g * k * k for cin, cout, k, g, _ in convs]
        out.append((sum(w + 2 * c[1] for w, c in zip(weights, convs)),
                    sum(w * c[4] ** 2 for w, c in zip(weights, convs))))
        channels, hw = width, hw_out
    return out


def test_mobilenet_v4_medium_is_the_papers_table_12_and_counts_to_9_7m():
    """Ours (= timm's mobilenetv4_conv_medium = the paper's TF code) is Tab. 12 row by row; Tab. 12 counts to
    9,715,512 parameters and 1.080 G MACs at 256 (0.828 G at 224), not the 9.2 M / 1.0 G of the paper's Tab. 6."""
    backbone = MobileNetV4(arch='mobilenetv4_conv_medium')
    layers = [[backbone.features[0]]] + [list(stage) for stage in backbone.features[1:]]
    assert [_table_row(b) for blocks in layers for b in blocks] == MNV4_CONV_M_TAB12
    per_row = _count_table(MNV4_CONV_M_TAB12, 224)
    ends = list(itertools.accumulate(MNV4_CONV_M_STAGES.values()))
    for name, blocks, start, end in zip(MNV4_CONV_M_STAGES, layers, [0] + ends, ends):
        assert sum(params(b) for b in blocks) == sum(p for p, _ in per_row[start:end]), name
    head = 960 * 1280 + 2 * 1280 + 1280 * 1000 + 1000  # 1x1 conv + BN, FC + bias
    table_params = sum(p for p, _ in per_row) + head
    assert table_params == 9_715_512
    model = build_model(str(REPO / 'configs' / 'classifier_mobilenetv4-conv-medium_imagenet.py'))
    assert params(model) == table_params
    for size, expected in ((224, 827_649_984), (256, 1_080_244_224)):
        table_macs = sum(m for _, m in _count_table(MNV4_CONV_M_TAB12, size)) + 960 * 1280 + 1280 * 1000
        assert table_macs == expected
        assert macs(model._forward, (3, size, size)) == table_macs
    # no reading of the classifier reaches Tab. 6's 9.2 M within 1%: all of it, without the FC, without the 1280 conv
    for n in (table_params, table_params - 1_281_000, table_params - 960 * 1280 - 2 * 1280):
        assert abs(n / 1e6 - 9.2) > 0.092


# MobileDet-CPU, block by block (TF object detection API, mobiledet_cpu_backbone):
# (in, expanded, out, kernel, stride, residual, squeeze width)
MOBILEDET_CPU_BLOCKS = [
    (16, 16, 8, 3, 1, False, 8), (8, 32, 16, 3, 2, False, 8),
    (16, 128, 32, 3, 2, False, 32), (32, 128, 32, 3, 1, True, 32), (32, 128, 32, 3, 1, True, 32),
    (32, 128, 32, 3, 1, True, 32),
    (32, 256, 72, 5, 2, False, 64), (72, 576, 72, 3, 1, True, 144), (72, 288, 72, 5, 1, True, 72),
    (72, 288, 72, 3, 1, True, 72), (72, 576, 72, 3, 1, False, 144), (72, 576, 72, 3, 1, True, 144),
    (72, 576, 72, 3, 1, True, 144), (72, 576, 72, 3, 1, True, 144),
    (72, 576, 104, 5, 2, False, 144), (104, 416, 104, 5, 1, True, 104), (104, 416, 104, 5, 1, True, 104),
    (104, 416, 104, 3, 1, True, 104), (104, 832, 144, 3, 1, False, 208)]


def _mobiledet_cpu_parameters() -> int:
    """Parameters of the table by the plain formulas: the 3x3 stem (16) and per block the 1x1 expansion (none where
    the width is kept), the depthwise conv, the squeeze-excitation's two 1x1 convs with biases and the 1x1
    projection; every other conv without bias and followed by BatchNorm (scale and shift)."""
    total = 3 * 16 * 9 + 2 * 16
    for cin, hidden, out, kernel, _, _, squeeze in MOBILEDET_CPU_BLOCKS:
        if hidden != cin:
            total += cin * hidden + 2 * hidden
        total += hidden * kernel * kernel + 2 * hidden
        total += hidden * squeeze + squeeze + squeeze * hidden + hidden
        total += hidden * out + 2 * out
    return total


def test_mobiledet_cpu_blocks_shapes_and_size():
    model = MobileDet(out_indices=('c1', 'c2', 'c3', 'c4', 'c5')).eval()
    blocks = [m for m in model.modules() if hasattr(m, 'use_residual')]
    got = [(b.in_channels, b.hidden_channels, b.out_channels, b.depthwise[0].kernel_size[0], b.stride,
            b.use_residual, b.se.fc1.out_channels) for b in blocks]
    assert got == MOBILEDET_CPU_BLOCKS
    assert all(isinstance(b.depthwise[2], torch.nn.Hardswish) for b in blocks)
    assert all(isinstance(b.se.scale_activation, torch.nn.Sigmoid) for b in blocks)
    with torch.no_grad():
        feats = model(torch.zeros(1, 3, 320, 320))
    assert [tuple(f.shape[1:]) for f in feats] == [(8, 160, 160), (16, 80, 80), (32, 40, 40), (72, 20, 20),
                                                  (144, 10, 10)]
    assert params(model) == _mobiledet_cpu_parameters() == 3_006_440


def test_ssdlite_mobiledet_cpu_matches_the_published_size():
    """TF config: "0.45B MulAdds, 4.21M Parameters" (its count includes BatchNorm moving mean and variance)."""
    model = build_model(str(REPO / 'configs' / 'ssdlite_mobiledet-cpu_400k_coco.py'))
    n = params(model)
    stats = sum(2 * m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert n == 4_165_055
    assert abs((n + stats) / 1e6 - 4.21) < 0.005
    assert abs(macs(model._forward, (3, 320, 320)) / 1e9 - 0.45) / 0.45 < 0.015
