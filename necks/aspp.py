"""Atrous spatial pyramid pooling (DeepLabv3, Chen et al., 2017, section 3.3) and its mobile reduction.

Branches run in parallel on one feature map and are concatenated, then projected by a 1x1 conv + BN + ReLU:
a 1x1 conv, one 3x3 atrous conv per rate in ``dilations`` and image-level features (global average pooling, 1x1
conv, bilinear up-sampling back). ``dilations=()`` gives the ASPP-lite of Mobile DeepLabv3 (MobileNetV2 paper,
section 6.3, Table 7: "no ASPP" keeps only the 1x1 and image-pooling branches, 256 channels each). The full ASPP
uses rates 6/12/18 at output stride 16 (doubled at output stride 8, DeepLabv3 section 4.1); torchvision's
``deeplabv3_mobilenet_v3_large`` uses 12/24/36 at output stride 16 and dropout 0.5 after the projection.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from . import NECKS


class ImagePooling(nn.Module):
    """Image-level features: global average pooling, 1x1 conv + BN + ReLU, up-sampled to the input size."""

    def __init__(self, in_channels: int, channels: int, norm_layer=nn.BatchNorm2d) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = Conv2dNormActivation(in_channels, channels, 1, norm_layer=norm_layer,
                                         activation_layer=nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # bilinear up-sampling of a 1x1 map is a broadcast: expand it (same values, no interpolation kernel)
        pooled = self.conv(self.pool(x))
        return pooled.expand(-1, -1, x.shape[-2], x.shape[-1])


@NECKS.register_module()
class ASPP(nn.Module):
    """ASPP on ``features[in_index]``; returns ``[fused]`` with ``out_channels == [channels]``.

    Args:
        in_channels: channels of every input feature map (the backbone's ``out_channels``).
        channels: width of every branch and of the projection (256 in both papers).
        dilations: atrous rates of the 3x3 branches; ``()`` is ASPP-lite (Mobile DeepLabv3).
        image_pooling: add the image-level branch.
        dropout: dropout after the projection (0.5 in torchvision's DeepLabV3 head, 0 in Mobile DeepLabv3).
        in_index: which input feature map to use (default: the last, deepest).
    """

    def __init__(self, in_channels: Sequence[int], channels: int = 256, dilations: Sequence[int] = (),
                 image_pooling: bool = True, dropout: float = 0.0, in_index: int = -1,
                 norm_layer=nn.BatchNorm2d) -> None:
        super().__init__()
        in_channels = list(in_channels)
        if not in_channels:
            raise ValueError('ASPP expects at least one input feature map, got in_channels=[]')
        if not -len(in_channels) <= in_index < len(in_channels):
            raise ValueError(f'ASPP in_index {in_index} is outside the {len(in_channels)} input feature maps')
        if any(int(d) < 1 for d in dilations):
            raise ValueError(f'ASPP dilations must be positive integers, got {list(dilations)}')
        c_in = in_channels[in_index]
        self.in_index, self.dilations = in_index, tuple(int(d) for d in dilations)
        branches: List[nn.Module] = [Conv2dNormActivation(c_in, channels, 1, norm_layer=norm_layer,
                                                          activation_layer=nn.ReLU)]
        for d in self.dilations:
            branches.append(Conv2dNormActivation(c_in, channels, 3, dilation=d, norm_layer=norm_layer,
                                                 activation_layer=nn.ReLU))
        if image_pooling:
            branches.append(ImagePooling(c_in, channels, norm_layer))
        self.branches = nn.ModuleList(branches)
        self.project = Conv2dNormActivation(len(branches) * channels, channels, 1, norm_layer=norm_layer,
                                            activation_layer=nn.ReLU)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_channels = [channels]

    def forward(self, features: List[torch.Tensor]) -> List[torch.Tensor]:
        x = features[self.in_index]
        fused = torch.cat([branch(x) for branch in self.branches], dim=1)
        return [self.dropout(self.project(fused))]
