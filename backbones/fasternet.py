"""FasterNet (Chen et al., "Run, Don't Walk: Chasing Higher FLOPS for Faster Neural Networks", CVPR 2023).

A 4x4 stride-4 patch embedding, then four stages of FasterNet blocks with 2x2 stride-2 patch merging between them
(the paper's architecture figure). A block is a partial convolution (PConv, section 3: a 3x3 convolution on the first ``1/n_div`` of the
channels, the others passed through, ``n_div = 4``) followed by two pointwise convolutions (expansion 2, norm and
activation between them) and a residual connection. The paper's table of variants: T0, T1, T2 have embedding widths 40, 64,
96, depths (1, 2, 8, 2), GELU for T0/T1 and ReLU for T2; the classifier is global pooling, a 1x1 convolution to
1280, the activation and a linear layer.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn
from torchvision.ops import StochasticDepth
from torchvision.ops.misc import Conv2dNormActivation

from .layers import resolve_activation, resolve_norm
from .registry import BACKBONES
from .staged import OutIndices, StagedBackbone

#: arch -> (embedding width, depths, activation, published ImageNet top-1, params (M), FLOPs (G)) (the paper's ImageNet table)
FASTERNET_ARCHS: Dict[str, dict] = {
    'fasternet_t0': dict(embed_dim=40, depths=(1, 2, 8, 2), act=nn.GELU, top1=71.9, params=3.9, macs=0.34),
    'fasternet_t1': dict(embed_dim=64, depths=(1, 2, 8, 2), act=nn.GELU, top1=76.2, params=7.6, macs=0.85),
    'fasternet_t2': dict(embed_dim=96, depths=(1, 2, 8, 2), act=nn.ReLU, top1=78.9, params=15.0, macs=1.91),
}


class PartialConv(nn.Module):
    """PConv (section 3): a ``k x k`` convolution on the first ``channels // n_div`` channels only."""

    def __init__(self, channels: int, n_div: int = 4, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv_channels = channels // n_div
        self.untouched = channels - self.conv_channels
        self.conv = nn.Conv2d(self.conv_channels, self.conv_channels, kernel_size, padding=kernel_size // 2,
                              bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head, tail = torch.split(x, [self.conv_channels, self.untouched], dim=1)
        return torch.cat((self.conv(head), tail), 1)


class FasterNetBlock(nn.Module):
    """PConv -> 1x1 conv (``mlp_ratio`` x) + norm + act -> 1x1 conv, plus the input (the FasterNet block)."""

    def __init__(self, channels: int, mlp_ratio: float = 2.0, n_div: int = 4, drop_path: float = 0.0,
                 norm_layer=nn.BatchNorm2d, act_layer=nn.GELU) -> None:
        super().__init__()
        hidden = int(channels * mlp_ratio)
        self.pconv = PartialConv(channels, n_div)
        self.mlp = nn.Sequential(
            Conv2dNormActivation(channels, hidden, 1, norm_layer=norm_layer, activation_layer=act_layer,
                                 inplace=None),
            nn.Conv2d(hidden, channels, 1, bias=False))
        self.drop_path = StochasticDepth(drop_path, 'row') if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.mlp(self.pconv(x)))


class FasterNetStage(nn.Sequential):
    """Optional 2x2 stride-2 patch merging (conv + norm, width doubled) followed by FasterNet blocks."""

    def __init__(self, in_channels: int, out_channels: int, depth: int, merge: bool, drop_paths: List[float],
                 mlp_ratio: float, n_div: int, norm_layer, act_layer) -> None:
        layers: List[nn.Module] = []
        if merge:
            layers.append(Conv2dNormActivation(in_channels, out_channels, 2, stride=2, padding=0,
                                               norm_layer=norm_layer, activation_layer=None))
        layers += [FasterNetBlock(out_channels, mlp_ratio, n_div, p, norm_layer, act_layer) for p in drop_paths]
        super().__init__(*layers)
        self.out_channels = out_channels


@BACKBONES.register_module()
class FasterNet(StagedBackbone):
    """FasterNet-T0/T1/T2. ``features`` = [patch embedding, stage0..stage3].

    Feature points (name: channels/stride, T0): stem 40/4, stage0 40/4, stage1 80/8, stage2 160/16, stage3 320/32.
    Default ``out_indices`` = stage0..stage3 (timm's ``features_only`` maps). ``drop_path_rate`` is the stochastic
    depth rate of the last stage (rates grow linearly per stage from 0). No dilation: patch merging is a 2x2 stride
    2 convolution, so ``output_stride`` is always 32.
    """

    def __init__(self, arch: str = 'fasternet_t0', out_indices: OutIndices = None, frozen_stages: int = -1,
                 norm_eval: bool = False, norm_layer=None, act_layer=None, mlp_ratio: float = 2.0, n_div: int = 4,
                 drop_path_rate: float = 0.0, in_channels: int = 3, pretrained: Optional[str] = None) -> None:
        super().__init__()
        if arch not in FASTERNET_ARCHS:
            raise ValueError(f'arch must be one of {sorted(FASTERNET_ARCHS)}, got {arch!r}')
        spec = FASTERNET_ARCHS[arch]
        self.arch = arch
        self.frozen_stages, self.norm_eval, self.pretrained = frozen_stages, norm_eval, pretrained
        norm = resolve_norm(norm_layer) or nn.BatchNorm2d
        act = resolve_activation(act_layer) or spec['act']
        dim, depths = spec['embed_dim'], spec['depths']
        stem = Conv2dNormActivation(in_channels, dim, 4, stride=4, padding=0, norm_layer=norm, activation_layer=None)
        stem.out_channels = dim
        layers: List[nn.Module] = [stem]
        points = [('stem', 0, dim, 4)]
        strides = [4]
        stride, channels = 4, dim
        for i, depth in enumerate(depths):
            rates = [drop_path_rate * i / max(len(depths) - 1, 1)] * depth  # stage-wise, as the reference code
            out = dim * 2 ** i
            if i > 0:
                stride *= 2
            layers.append(FasterNetStage(channels, out, depth, i > 0, rates, mlp_ratio, n_div, norm, act))
            points.append((f'stage{i}', len(layers) - 1, out, stride))
            strides.append(stride)
            channels = out
        self.features = nn.Sequential(*layers)
        self._finish_staged(points, [1, 2, 3, 4], out_indices, ('stage0', 'stage1', 'stage2', 'stage3'), strides)
