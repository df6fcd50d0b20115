"""MobileNetV4 conv-only models (Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem", ECCV 2024).

Built from the universal inverted bottleneck (UIB, the paper's building block): an optional depthwise conv before the expansion
(``start``), the 1x1 expansion, an optional depthwise conv after it (``mid``), the 1x1 projection. Its instances are
the inverted bottleneck (mid only), ConvNext-like (start only), ExtraDW (both) and FFN (neither). Stage 0 is regular
convolutions (small) or a fused inverted bottleneck (medium: kxk expansion conv + 1x1 projection). The stride goes
on ``mid`` when it exists, else on ``start``. The paper's architecture tables of Conv-S and Conv-M (Appendix D,
Tabs. 11 and 12) give the layers; the rows below are theirs (Tab. 12 with its head counts to 9,715,512 parameters,
not the 9.2 M of the paper's Tab. 6: docs/backbones.md): ('conv', k, s, out) | ('fused', k, s, expansion, out) |
('uib', start k, mid k, s, expansion, out), k = 0 meaning "no such conv". A final 1x1 conv to 960 ends the
backbone; the classifier pools, then 1x1 conv to 1280 + BN + ReLU, then a linear layer. Every conv has BatchNorm;
activations are ReLU.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torchvision.ops import StochasticDepth
from torchvision.ops.misc import Conv2dNormActivation

from .layers import make_divisible, resolve_activation, resolve_norm
from .registry import BACKBONES
from .staged import OutIndices, StagedBackbone

Row = Tuple
MNV4_ARCHS: Dict[str, dict] = {
    'mobilenetv4_conv_small': dict(stem=32, top1=73.8, params=3.8, macs=0.2, stages=[
        [('conv', 3, 2, 32), ('conv', 1, 1, 32)],
        [('conv', 3, 2, 96), ('conv', 1, 1, 64)],
        [('uib', 5, 5, 2, 3.0, 96)] + [('uib', 0, 3, 1, 2.0, 96)] * 4 + [('uib', 3, 0, 1, 4.0, 96)],
        [('uib', 3, 3, 2, 6.0, 128), ('uib', 5, 5, 1, 4.0, 128), ('uib', 0, 5, 1, 4.0, 128),
         ('uib', 0, 5, 1, 3.0, 128), ('uib', 0, 3, 1, 4.0, 128), ('uib', 0, 3, 1, 4.0, 128)],
        [('conv', 1, 1, 960)]]),
    # params/macs: the paper's Tab. 6 (M, G at 256 px); its own Tab. 12, i.e. these rows, counts 9.72 M / 1.08 G
    'mobilenetv4_conv_medium': dict(stem=32, top1=79.9, params=9.2, macs=1.0, stages=[
        [('fused', 3, 2, 4.0, 48)],
        [('uib', 3, 5, 2, 4.0, 80), ('uib', 3, 3, 1, 2.0, 80)],
        [('uib', 3, 5, 2, 6.0, 160), ('uib', 3, 3, 1, 4.0, 160), ('uib', 3, 3, 1, 4.0, 160),
         ('uib', 3, 5, 1, 4.0, 160), ('uib', 3, 3, 1, 4.0, 160), ('uib', 3, 0, 1, 4.0, 160),
         ('uib', 0, 0, 1, 2.0, 160), ('uib', 3, 0, 1, 4.0, 160)],
        [('uib', 5, 5, 2, 6.0, 256), ('uib', 5, 5, 1, 4.0, 256), ('uib', 3, 5, 1, 4.0, 256),
         ('uib', 3, 5, 1, 4.0, 256), ('uib', 0, 0, 1, 4.0, 256), ('uib', 3, 0, 1, 4.0, 256),
         ('uib', 3, 5, 1, 2.0, 256), ('uib', 5, 5, 1, 4.0, 256), ('uib', 0, 0, 1, 4.0, 256),
         ('uib', 0, 0, 1, 4.0, 256), ('uib', 5, 0, 1, 2.0, 256)],
        [('conv', 1, 1, 960)]]),
}


class UniversalInvertedBottleneck(nn.Module):
    """UIB: [start dw] -> 1x1 expansion -> [mid dw] -> 1x1 projection, residual when shapes match.

    The start depthwise conv has no activation; expansion and mid have norm + activation; projection norm only.
    """

    def __init__(self, in_channels: int, out_channels: int, start_kernel: int, mid_kernel: int, stride: int,
                 expansion: float, dilation: int = 1, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        if stride > 1 and not (start_kernel or mid_kernel):
            raise ValueError('a strided UIB block needs a depthwise convolution')
        self.use_residual = stride == 1 and in_channels == out_channels
        self.start = (Conv2dNormActivation(in_channels, in_channels, start_kernel,
                                           stride=1 if mid_kernel else stride, dilation=dilation,
                                           groups=in_channels, norm_layer=norm_layer, activation_layer=None)
                      if start_kernel else None)
        hidden = make_divisible(in_channels * expansion)
        self.expand = Conv2dNormActivation(in_channels, hidden, 1, norm_layer=norm_layer, activation_layer=act_layer)
        self.mid = (Conv2dNormActivation(hidden, hidden, mid_kernel, stride=stride, dilation=dilation, groups=hidden,
                                         norm_layer=norm_layer, activation_layer=act_layer)
                    if mid_kernel else None)
        self.project = Conv2dNormActivation(hidden, out_channels, 1, norm_layer=norm_layer, activation_layer=None)
        self.drop_path = StochasticDepth(drop_path, 'row') if drop_path > 0 else nn.Identity()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.start(x) if self.start is not None else x
        y = self.expand(y)
        if self.mid is not None:
            y = self.mid(y)
        y = self.project(y)
        return x + self.drop_path(y) if self.use_residual else y


class FusedInvertedBottleneck(nn.Module):
    """k x k expansion conv (strided) + norm + act -> 1x1 projection + norm, residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: float,
                 dilation: int = 1, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU) -> None:
        super().__init__()
        hidden = make_divisible(in_channels * expansion)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = Conv2dNormActivation(in_channels, hidden, kernel, stride=stride, dilation=dilation,
                                           norm_layer=norm_layer, activation_layer=act_layer)
        self.project = Conv2dNormActivation(hidden, out_channels, 1, norm_layer=norm_layer, activation_layer=None)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.expand(x))
        return x + y if self.use_residual else y


@BACKBONES.register_module()
class MobileNetV4(StagedBackbone):
    """MobileNetV4-Conv-Small / -Medium. ``features`` = [stem, stage0..stage3, last_conv].

    Feature points (name: channels/stride), small: stem 32/2, stage0 32/4, stage1 64/8, stage2 96/16, stage3 128/32,
    last_conv 960/32; medium: stem 32/2, stage0 48/4, stage1 80/8, stage2 160/16, stage3 256/32, last_conv 960/32.
    Default ``out_indices`` = (stem, stage0, stage1, stage2, last_conv): timm's ``features_only`` maps.
    ``output_stride`` 16/8 replaces the last strides by dilation (DeepLabv3, section 3.1).
    """

    def __init__(self, arch: str = 'mobilenetv4_conv_small', out_indices: OutIndices = None,
                 output_stride: int = 32, frozen_stages: int = -1, norm_eval: bool = False, norm_layer=None,
                 act_layer=None, drop_path_rate: float = 0.0, in_channels: int = 3,
                 pretrained: Optional[str] = None) -> None:
        super().__init__()
        if arch not in MNV4_ARCHS:
            raise ValueError(f'arch must be one of {sorted(MNV4_ARCHS)}, got {arch!r}')
        if output_stride not in (8, 16, 32):
            raise ValueError(f'output_stride must be 8, 16 or 32, got {output_stride}')
        spec = MNV4_ARCHS[arch]
        self.arch, self.output_stride = arch, output_stride
        self.frozen_stages, self.norm_eval, self.pretrained = frozen_stages, norm_eval, pretrained
        norm = resolve_norm(norm_layer) or nn.BatchNorm2d
        act = resolve_activation(act_layer) or nn.ReLU
        stem = Conv2dNormActivation(in_channels, spec['stem'], 3, stride=2, norm_layer=norm, activation_layer=act)
        stem.out_channels = spec['stem']
        layers: List[nn.Module] = [stem]
        points = [('stem', 0, spec['stem'], 2)]
        strides = [2]
        stride, dilation, channels = 2, 1, spec['stem']
        n_uib = sum(r[0] == 'uib' for rows in spec['stages'] for r in rows)
        seen_uib = 0
        names = ['stage0', 'stage1', 'stage2', 'stage3', 'last_conv']
        for name, rows in zip(names, spec['stages']):
            blocks: List[nn.Module] = []
            for row in rows:
                s = row[3] if row[0] == 'uib' else row[2]
                block_dilation = dilation
                if s > 1 and stride * s > output_stride:  # dilate instead of striding
                    dilation *= s
                    s = 1
                else:
                    stride *= s
                if row[0] == 'conv':
                    _, k, _, out = row
                    block = Conv2dNormActivation(channels, out, k, stride=s, dilation=block_dilation if k > 1 else 1,
                                                 norm_layer=norm, activation_layer=act)
                    block.out_channels = out
                elif row[0] == 'fused':
                    _, k, _, e, out = row
                    block = FusedInvertedBottleneck(channels, out, k, s, e, block_dilation, norm, act)
                else:
                    _, ks, km, _, e, out = row
                    block = UniversalInvertedBottleneck(channels, out, ks, km, s, e, block_dilation, norm, act,
                                                        drop_path_rate * seen_uib / max(n_uib, 1))
                    seen_uib += 1
                blocks.append(block)
                channels = out
            stage = nn.Sequential(*blocks)
            stage.out_channels = channels
            layers.append(stage)
            points.append((name, len(layers) - 1, channels, stride))
            strides.append(stride)
        self.features = nn.Sequential(*layers)
        self._finish_staged(points, [1, 2, 3, 4, 5], out_indices, ('stem', 'stage0', 'stage1', 'stage2', 'last_conv'),
                            strides)
