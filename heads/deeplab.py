"""Per-pixel classifiers of DeepLabv3 (Chen et al., 2017) and the FCN auxiliary head (Long et al., 2015).

``DeepLabHead`` is the last stage after ASPP: optionally a 3x3 conv + BN + ReLU (torchvision's DeepLabV3 head has
one with 256 channels; Mobile DeepLabv3, MobileNetV2 paper section 6.3, goes straight to the 1x1 classifier),
dropout, then a 1x1 conv to ``num_classes`` logits at the feature map's resolution. ``FCNHead`` is the auxiliary
classifier torchvision attaches to an intermediate backbone map: 3x3 conv to ``in/4`` channels, BN, ReLU,
dropout 0.1, 1x1 conv. Up-sampling to the image size is the task model's job.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from .registry import HEADS


def _pick(in_channels: Sequence[int], in_index: int, name: str) -> int:
    in_channels = list(in_channels)
    if not in_channels:
        raise ValueError(f'{name} expects at least one input feature map, got in_channels=[]')
    if not -len(in_channels) <= in_index < len(in_channels):
        raise ValueError(f'{name} in_index {in_index} is outside the {len(in_channels)} input feature maps '
                         f'(in_channels={in_channels})')
    return in_channels[in_index]


@HEADS.register_module()
class DeepLabHead(nn.Module):
    """[3x3 conv + BN + ReLU] -> dropout -> 1x1 classifier on ``features[in_index]``; ``out_channels = [K]``."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: Optional[int] = None,
                 kernel_size: int = 3, dropout: float = 0.0, in_index: int = -1, norm_layer=nn.BatchNorm2d) -> None:
        super().__init__()
        c_in = _pick(in_channels, in_index, 'DeepLabHead')
        if num_classes < 1:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        self.in_index, self.num_classes = in_index, num_classes
        self.conv = (Conv2dNormActivation(c_in, channels, kernel_size, norm_layer=norm_layer,
                                          activation_layer=nn.ReLU) if channels else None)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(channels or c_in, num_classes, 1)
        self.out_channels = [num_classes]

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        x = features[self.in_index]
        if self.conv is not None:
            x = self.conv(x)
        return self.classifier(self.dropout(x))


@HEADS.register_module()
class FCNHead(DeepLabHead):
    """FCN-style auxiliary head: 3x3 conv to ``in_channels // reduction`` + BN + ReLU, dropout 0.1, 1x1 classifier."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, reduction: int = 4, dropout: float = 0.1,
                 in_index: int = 0, norm_layer=nn.BatchNorm2d) -> None:
        c_in = _pick(in_channels, in_index, 'FCNHead')
        super().__init__(in_channels, num_classes, channels=c_in // reduction, kernel_size=3, dropout=dropout,
                         in_index=in_index, norm_layer=norm_layer)
