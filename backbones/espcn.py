"""The feature layers of ESPCN (Shi et al., 2016, section 2.2): conv 5x5 (64) -> tanh -> conv 3x3 (32) -> tanh."""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from .layers import resolve_activation
from .registry import BACKBONES


@BACKBONES.register_module()
class ESPCNFeatures(nn.Module):
    """Low-resolution feature extraction of ESPCN; the sub-pixel layer is ``heads.SubPixelHead``.

    Defaults follow the paper (section 3.2): l = 3, (f1, n1) = (5, 64), (f2, n2) = (3, 32), tanh. The
    convolutions are padded so the feature map keeps the input's size and the output is exactly r times larger.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (64, 32), kernel_sizes: Sequence[int] = (5, 3),
                 act_layer='tanh') -> None:
        super().__init__()
        if len(channels) != len(kernel_sizes):
            raise ValueError(f'channels {list(channels)} and kernel_sizes {list(kernel_sizes)} differ in length')
        act = resolve_activation(act_layer)
        layers: List[nn.Module] = []
        prev = in_channels
        for width, k in zip(channels, kernel_sizes):
            layers += [nn.Conv2d(prev, width, k, padding=k // 2), act()]
            prev = width
        self.layers = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.out_channels = [prev]
        self.strides = [1]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return [self.layers(x)]
