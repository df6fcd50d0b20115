"""SSDLite extra feature layers (MobileNetV2 paper, Sandler et al. 2018, section 6.2).

The backbone gives two maps (the expansion output of the first stride-32 block, at stride 16, and the last 1x1
convolution, at stride 32); four extra layers follow, each a 1x1 convolution to half the depth, a 3x3 depthwise
convolution with stride 2 and a 1x1 convolution to the layer's depth (512, 256, 256, 128), with BatchNorm and
ReLU6 after every convolution ("SSDLite": all regular convolutions of SSD's extra layers replaced by separable
ones).
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from backbones.layers import normal_init, resolve_activation, resolve_norm
from . import NECKS


class ExtraBlock(nn.Sequential):
    """1x1 conv (depth/2) -> 3x3 depthwise stride 2 -> 1x1 conv (depth), each with norm and activation."""

    def __init__(self, in_channels: int, out_channels: int, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU6) -> None:
        mid = out_channels // 2
        super().__init__(
            Conv2dNormActivation(in_channels, mid, 1, norm_layer=norm_layer, activation_layer=act_layer),
            Conv2dNormActivation(mid, mid, 3, stride=2, groups=mid, norm_layer=norm_layer, activation_layer=act_layer),
            Conv2dNormActivation(mid, out_channels, 1, norm_layer=norm_layer, activation_layer=act_layer),
        )


@NECKS.register_module()
class SSDLiteNeck(nn.Module):
    """Pass the backbone's maps through and add ``len(extra_channels)`` stride-2 maps after the last one.

    ``out_channels`` is ``in_channels + extra_channels`` (six maps for the paper's two backbone maps).
    ``width_mult`` scales the extra depths (never below ``min_depth``).
    """

    def __init__(self, in_channels: Sequence[int], extra_channels: Sequence[int] = (512, 256, 256, 128),
                 width_mult: float = 1.0, min_depth: int = 16, norm_layer='bn', act_layer='relu6') -> None:
        super().__init__()
        in_channels = list(in_channels)
        if len(in_channels) < 1:
            raise ValueError('SSDLiteNeck expects at least one backbone map (in_channels=[] given)')
        depths = [max(min_depth, int(c * width_mult)) for c in extra_channels]
        norm = resolve_norm(norm_layer) or nn.BatchNorm2d
        act = resolve_activation(act_layer) or nn.ReLU6
        blocks, prev = [], in_channels[-1]
        for depth in depths:
            blocks.append(ExtraBlock(prev, depth, norm, act))
            prev = depth
        self.extra = nn.ModuleList(blocks)
        self.in_channels = in_channels
        self.out_channels: List[int] = in_channels + depths
        normal_init(self.extra)

    def forward(self, features: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        if len(features) != len(self.in_channels):
            raise ValueError(f'SSDLiteNeck was built for {len(self.in_channels)} maps, got {len(features)}')
        outs = list(features)
        x = outs[-1]
        for block in self.extra:
            x = block(x)
            outs.append(x)
        return outs
