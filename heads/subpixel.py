"""Efficient sub-pixel convolution layer (ESPCN, Shi et al., 2016, section 2.2, eq. 4)."""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from .registry import HEADS


@HEADS.register_module()
class SubPixelHead(nn.Module):
    """A 3x3 convolution to ``r^2 * C`` channels followed by the periodic shuffle ``PS`` (``nn.PixelShuffle``).

    Takes the last of the backbone's features; the output is ``C x rH x rW``, linear (the paper applies tanh only
    to the hidden layers).
    """

    def __init__(self, in_channels: Sequence[int], scale: int, out_channels: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        in_channels = list(in_channels)
        if len(in_channels) < 1:
            raise ValueError('SubPixelHead expects at least one input feature map, got in_channels=[]')
        if scale < 1:
            raise ValueError(f'scale must be a positive integer, got {scale}')
        self.scale, self.out_channels = scale, out_channels
        self.conv = nn.Conv2d(in_channels[-1], out_channels * scale * scale, kernel_size, padding=kernel_size // 2)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        return self.shuffle(self.conv(features[-1]))
