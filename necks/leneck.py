"""LeNeck, LeYOLO's fast path-aggregation neck (Hollard et al., 2024, section 3.2, "FPAN"), from inverted
bottlenecks only.

With backbone maps P3/P4/P5 (channels c3/c4/c5, strides 8/16/32) and outputs of widths o3/o4/o5 (by default the
input widths)::

    H4    = 3 IB k5 ( up2(P5) ++ P4 )                           -> o4, stride 16  (top-down)
    out3  = IB k3 depthwise on the concat, no expansion ( up2(H4) ++ P3 )
            + 2 IB k3                                           -> o3, stride 8
    out4  = 3 IB k5 ( conv3x3 s2(out3) ++ H4 )                  -> o4, stride 16  (bottom-up)
    out5  = 3 IB k5 ( conv3x3 s2(out4) ++ P5 )                  -> o5, stride 32

``up2`` is nearest-neighbour upsampling, ``++`` channel concatenation. The expanding blocks widen to
``expand_ratio`` x their output width (rounded up to a multiple of 8). The issue and the paper give the layout, not
these widths: 2.25 is the one ratio that puts both LeYOLO-Nano and LeYOLO-Small within 1% of their published
parameter counts and 2% of their MACs (2.5 gives Small +3.7% / +5.5%; docs/detection.md has the table).
``sppf=True`` puts an SPPF block on the last input, so a MobileNetV2/V3 backbone's maps (which have none) can be
used as they are ("MobileNetV3-Large + LeNeck" is a config).
"""
from __future__ import annotations

from functools import partial
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from backbones.layers import SPPF, InvertedResidual, make_divisible, resolve_activation, resolve_norm
from . import NECKS


def ib_stack(in_channels: int, out_channels: int, num_blocks: int, kernel_size: int, expand_ratio: float,
             norm, act, first_hidden: Optional[int] = None) -> nn.Sequential:
    """``num_blocks`` inverted bottlenecks ``in -> out -> out ...``; expansion to ``expand_ratio`` x ``out``
    (``first_hidden`` overrides the first block's expanded width)."""
    hidden = make_divisible(expand_ratio * out_channels, round_up=True)
    blocks = []
    for i in range(num_blocks):
        cin = in_channels if i == 0 else out_channels
        h = first_hidden if (i == 0 and first_hidden is not None) else hidden
        blocks.append(InvertedResidual(cin, out_channels, h, 1, kernel_size, norm_layer=norm, act_layer=act))
    return nn.Sequential(*blocks)


@NECKS.register_module()
class LeNeck(nn.Module):
    """Top-down + bottom-up fusion of three maps; ``out_channels`` (default: ``in_channels``), ``strides`` kept."""

    def __init__(self, in_channels: Sequence[int], strides: Optional[Sequence[int]] = (8, 16, 32),
                 out_channels: Optional[Sequence[int]] = None, sppf: bool = False, num_blocks: int = 3,
                 expand_ratio: float = 2.25, norm_layer=None, act_layer='silu') -> None:
        super().__init__()
        in_channels = [int(c) for c in in_channels]
        if len(in_channels) != 3:
            raise ValueError(f'LeNeck expects three maps (P3, P4, P5), got in_channels={in_channels}')
        out_channels = list(in_channels if out_channels is None else out_channels)
        if len(out_channels) != 3:
            raise ValueError(f'LeNeck gives three maps; out_channels needs 3 entries, got {out_channels}')
        if strides is not None and len(strides) != 3:
            raise ValueError(f'LeNeck expects three strides, got {strides}')
        if num_blocks < 2:
            raise ValueError(f'num_blocks must be >= 2, got {num_blocks}')
        norm = resolve_norm(norm_layer) or partial(nn.BatchNorm2d, eps=1e-3, momentum=0.03)
        act = resolve_activation(act_layer) or nn.SiLU
        c3, c4, c5 = in_channels
        o3, o4, o5 = out_channels
        self.sppf = SPPF(c5, c5, 5, norm_layer=norm, act_layer=act) if sppf else None
        self.top4 = ib_stack(c5 + c4, o4, num_blocks, 5, expand_ratio, norm, act)
        self.top3 = ib_stack(o4 + c3, o3, num_blocks, 3, expand_ratio, norm, act, first_hidden=o4 + c3)
        self.down3 = Conv2dNormActivation(o3, o3, 3, stride=2, norm_layer=norm, activation_layer=act)
        self.bottom4 = ib_stack(o3 + o4, o4, num_blocks, 5, expand_ratio, norm, act)
        self.down4 = Conv2dNormActivation(o4, o4, 3, stride=2, norm_layer=norm, activation_layer=act)
        self.bottom5 = ib_stack(o4 + c5, o5, num_blocks, 5, expand_ratio, norm, act)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.strides = list(strides) if strides is not None else None

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode='nearest')

    def forward(self, features: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        if len(features) != 3:
            raise ValueError(f'LeNeck was built for 3 maps, got {len(features)}')
        p3, p4, p5 = features
        if self.sppf is not None:
            p5 = self.sppf(p5)
        h4 = self.top4(torch.cat([self._up(p5, p4), p4], 1))
        out3 = self.top3(torch.cat([self._up(h4, p3), p3], 1))
        out4 = self.bottom4(torch.cat([self.down3(out3), h4], 1))
        out5 = self.bottom5(torch.cat([self.down4(out4), p5], 1))
        return [out3, out4, out5]
