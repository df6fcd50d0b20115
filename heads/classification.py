"""Image classification head: global average pooling, optional hidden layer, dropout, linear classifier.

MobileNetV2 (section 6.1): pool -> dropout 0.2 -> linear. MobileNetV3 (Figure 5): pool -> 1x1 to 1280 ->
hard-swish -> dropout 0.2 -> linear.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn

from backbones.layers import resolve_activation
from .registry import HEADS


@HEADS.register_module()
class LinearClsHead(nn.Module):
    def __init__(self, in_channels: Sequence[int], num_classes: int, hidden_channels: Optional[int] = None,
                 act_layer='hardswish', dropout: float = 0.2) -> None:
        super().__init__()
        in_channels = list(in_channels)
        if not in_channels:
            raise ValueError('LinearClsHead expects at least one input feature map, got in_channels=[]')
        width = in_channels[-1]
        self.hidden = nn.Linear(width, hidden_channels) if hidden_channels else None
        self.act = resolve_activation(act_layer)() if hidden_channels else None
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_channels or width, num_classes)
        self.out_channels = num_classes
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(features[-1], 1), 1)
        if self.hidden is not None:
            x = self.act(self.hidden(x))
        return self.fc(self.dropout(x))
