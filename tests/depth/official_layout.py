"""A network with the module layout and forward of the official FastDepth ``MobileNetSkipAdd`` (dwofk/fast-depth,
models.py), written here from its description, to make state dicts with the official key names for the tests.

``conv0`` = conv 3x3 s2 + BN + ReLU6; ``conv1..13`` = [depthwise 3x3, BN, ReLU6, pointwise 1x1, BN, ReLU6];
``decode_conv1..5`` = [[depthwise 5x5, BN, ReLU], [pointwise 1x1, BN, ReLU]]; ``decode_conv6`` = [1x1, BN, ReLU].
Forward: after ``decode_convN`` and x2 nearest up-sampling, add the output of ``conv5`` (N=2), ``conv3`` (N=3)
and ``conv1`` (N=4).
"""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

ENCODER_WIDTHS = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
DECODER_WIDTHS = [512, 256, 128, 64, 32]
STRIDES = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]   # of conv1..conv13


def _conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act=nn.ReLU) -> List[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), act()]


class OfficialLayout(nn.Module):
    def __init__(self, encoder: Sequence[int] = ENCODER_WIDTHS, decoder: Sequence[int] = DECODER_WIDTHS) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(*_conv_bn_act(3, encoder[0], 3, 2, act=nn.ReLU6))
        for i in range(1, 14):
            cin, cout = encoder[i - 1], encoder[i]
            setattr(self, f'conv{i}', nn.Sequential(*_conv_bn_act(cin, cin, 3, STRIDES[i - 1], cin, nn.ReLU6),
                                                    *_conv_bn_act(cin, cout, 1, act=nn.ReLU6)))
        previous = encoder[13]
        for j in range(1, 6):
            setattr(self, f'decode_conv{j}', nn.Sequential(
                nn.Sequential(*_conv_bn_act(previous, previous, 5, groups=previous)),
                nn.Sequential(*_conv_bn_act(previous, decoder[j - 1], 1))))
            previous = decoder[j - 1]
        self.decode_conv6 = nn.Sequential(*_conv_bn_act(previous, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = {}
        for i in range(14):
            x = getattr(self, f'conv{i}')(x)
            taps[i] = x
        for j in range(1, 6):
            x = F.interpolate(getattr(self, f'decode_conv{j}')(x), scale_factor=2, mode='nearest')
            if j in (2, 3, 4):
                x = x + taps[{2: 5, 3: 3, 4: 1}[j]]
        return self.decode_conv6(x)


def randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BatchNorm statistics large enough that ReLU6 clips (so ReLU would differ)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=generator) * 2 + 1.0)
                m.bias.copy_(torch.randn(m.num_features, generator=generator) * 0.5 + 0.5)
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) * 0.5 + 0.5)
                m.num_batches_tracked.fill_(1000)
    return module.eval()
