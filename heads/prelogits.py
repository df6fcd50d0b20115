"""Classifier heads with a pre-logits layer after global pooling, as FasterNet, MobileNetV4 and InceptionNeXt use.

pool -> hidden layer (a 1x1 conv on the pooled map, or a linear layer) -> [norm] -> act -> [norm] -> dropout ->
linear. FasterNet (Chen et al. 2023): 1x1 conv to 1280 without bias, activation. MobileNetV4 (Qin et al.
2024): 1x1 conv to 1280 without bias, BatchNorm, ReLU. InceptionNeXt (Yu et al. 2024):
linear to 3x the width, GELU, LayerNorm (eps 1e-6).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn

from backbones.layers import resolve_activation
from .registry import HEADS


@HEADS.register_module()
class PreLogitsClsHead(nn.Module):
    """``hidden_layer='conv'`` (1x1 conv, BatchNorm possible) or ``'linear'``; ``norm`` None, 'bn' or 'ln';
    ``norm_first``: norm before the activation (MobileNetV4) or after it (InceptionNeXt)."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, hidden_channels: int = 1280,
                 hidden_layer: str = 'conv', hidden_bias: bool = False, norm: Optional[str] = None,
                 norm_first: bool = True, act_layer='relu', dropout: float = 0.0) -> None:
        super().__init__()
        in_channels = list(in_channels)
        if not in_channels:
            raise ValueError('PreLogitsClsHead expects at least one input feature map, got in_channels=[]')
        if hidden_layer not in ('conv', 'linear'):
            raise ValueError(f"hidden_layer must be 'conv' or 'linear', got {hidden_layer!r}")
        if norm not in (None, 'bn', 'ln'):
            raise ValueError(f"norm must be None, 'bn' or 'ln', got {norm!r}")
        width = in_channels[-1]
        self.hidden_layer = hidden_layer
        self.hidden = (nn.Conv2d(width, hidden_channels, 1, bias=hidden_bias) if hidden_layer == 'conv'
                       else nn.Linear(width, hidden_channels, bias=hidden_bias))
        if norm == 'bn':
            self.norm = nn.BatchNorm1d(hidden_channels)
        elif norm == 'ln':
            self.norm = nn.LayerNorm(hidden_channels, eps=1e-6)
        else:
            self.norm = None
        self.norm_first = norm_first
        if isinstance(act_layer, str) and act_layer.lower() == 'gelu':  # not in backbones.layers' table
            act_layer = nn.GELU
        act = act_layer if callable(act_layer) else resolve_activation(act_layer)
        self.act = act()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_channels, num_classes)
        self.out_channels = num_classes
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(features[-1], 1)
        x = self.hidden(x) if self.hidden_layer == 'conv' else self.hidden(torch.flatten(x, 1))
        x = torch.flatten(x, 1)
        if self.norm is not None and self.norm_first:
            x = self.norm(x)
        x = self.act(x)
        if self.norm is not None and not self.norm_first:
            x = self.norm(x)
        return self.fc(self.dropout(x))
