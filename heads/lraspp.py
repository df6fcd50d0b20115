"""Lite Reduced ASPP (LR-ASPP), the MobileNetV3 segmentation head (Howard et al., 2019, section 6.4, Figure 10).

The deep map (stride 16) goes through a 1x1 conv + BN + ReLU, gated by a squeeze-excitation-like branch
(pooling, 1x1 conv, sigmoid); the result is up-sampled to the shallow map's size (stride 8) and classified; the
shallow map gets its own 1x1 classifier and the two logits are added. The paper pools with a 49x49 kernel and
stride (16, 20); torchvision's ``lraspp_mobilenet_v3_large`` pools globally, which is the default here
(``pool_kernel=None``) so converted torchvision weights give the same logits.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from .registry import HEADS


@HEADS.register_module()
class LRASPPHead(nn.Module):
    """LR-ASPP on ``features[low_index]`` (stride 8) and ``features[high_index]`` (stride 16); logits at stride 8."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int = 128, low_index: int = 0,
                 high_index: int = -1, pool_kernel: Optional[Tuple[int, int]] = None,
                 pool_stride: Optional[Tuple[int, int]] = None, norm_layer=nn.BatchNorm2d) -> None:
        super().__init__()
        in_channels = list(in_channels)
        if len(in_channels) < 2:
            raise ValueError(f'LRASPPHead expects two input feature maps (stride 8 and stride 16), got '
                             f'in_channels={in_channels}')
        for name, index in (('low_index', low_index), ('high_index', high_index)):
            if not -len(in_channels) <= index < len(in_channels):
                raise ValueError(f'LRASPPHead {name} {index} is outside the {len(in_channels)} input feature maps')
        low, high = in_channels[low_index], in_channels[high_index]
        self.low_index, self.high_index, self.num_classes = low_index, high_index, num_classes
        self.cbr = Conv2dNormActivation(high, channels, 1, norm_layer=norm_layer, activation_layer=nn.ReLU)
        pool = (nn.AdaptiveAvgPool2d(1) if pool_kernel is None
                else nn.AvgPool2d(pool_kernel, stride=pool_stride or pool_kernel))
        self.scale = nn.Sequential(pool, nn.Conv2d(high, channels, 1, bias=False), nn.Sigmoid())
        self.global_pool = pool_kernel is None
        self.low_classifier = nn.Conv2d(low, num_classes, 1)
        self.high_classifier = nn.Conv2d(channels, num_classes, 1)
        self.out_channels = [num_classes]

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        low, high = features[self.low_index], features[self.high_index]
        gate = self.scale(high)
        x = self.cbr(high)
        if not self.global_pool:  # strided pooling: stretch the gate back over the map
            gate = F.interpolate(gate, size=x.shape[-2:], mode='bilinear', align_corners=False)
        x = F.interpolate(x * gate, size=low.shape[-2:], mode='bilinear', align_corners=False)
        return self.low_classifier(low) + self.high_classifier(x)
