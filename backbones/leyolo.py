"""LeYOLO backbone (Hollard et al., "LeYOLO, New Scalable and Efficient CNN Architecture for Object Detection",
2024, section 3.1 and the architecture table): inverted bottlenecks with SiLU and no squeeze-excitation, an SPPF
block at the end.

Nano at width 1.0 (output channels, stride after each row)::

    stem 3x3 conv s2 (16) -> 1x1 conv (16)                                  /2
    IB k3 s2, no expansion (16)                                             /4
    2 x IB k3, expansion 96 (32)                                            /8   P3
    5 x IB k5, expansion 96 (first) then 192 (64)                           /16  P4
    4 x IB k5, expansion 576 (96)                                           /32
    SPPF (96)                                                               /32  P5

Small is width 1.33, Medium width 1.33 with 3/6/5 blocks at /8, /16, /32. Width scaling caps a channel count at
576, multiplies it by the width and rounds **up** to a multiple of 8 (``make_divisible(..., round_up=True,
cap=576)``). BatchNorm uses eps 1e-3 and momentum 0.03 (the YOLOv5/v8 setting LeYOLO trains with).
"""
from __future__ import annotations

from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from .base import FeaturePoint, FeaturePointBackbone
from .layers import SPPF, InvertedResidual, make_divisible, resolve_activation, resolve_norm
from .registry import BACKBONES

#: arch -> (width, blocks at /8, /16, /32)
LEYOLO_ARCHS: Dict[str, Tuple[float, Tuple[int, int, int]]] = {
    'n': (1.0, (2, 5, 4)), 's': (1.33, (2, 5, 4)), 'm': (1.33, (3, 6, 5))}


@BACKBONES.register_module()
class LeYOLONet(FeaturePointBackbone):
    """LeYOLO-Nano/Small/Medium feature extractor.

    Feature points (Nano): stage0 16/2, stage1 16/4, stage2 32/8, stage3 64/16, stage4 96/32, sppf 96/32.
    The default ``out_indices`` give P3/P4/P5 = (stage2, stage3, sppf). ``width_mult`` and ``depths`` override
    the arch's values.
    """

    def __init__(self, arch: str = 'n', width_mult: Optional[float] = None, depths: Optional[Sequence[int]] = None,
                 out_indices: Optional[Sequence[Union[int, str]]] = ('stage2', 'stage3', 'sppf'),
                 frozen_stages: int = -1, norm_eval: bool = False, norm_layer=None, act_layer='silu',
                 in_channels: int = 3, pretrained: Optional[str] = None) -> None:
        super().__init__()
        if arch not in LEYOLO_ARCHS:
            raise ValueError(f'arch must be one of {sorted(LEYOLO_ARCHS)}, got {arch!r}')
        width, default_depths = LEYOLO_ARCHS[arch]
        width = width if width_mult is None else width_mult
        depths = tuple(default_depths if depths is None else depths)
        if len(depths) != 3 or min(depths) < 1:
            raise ValueError(f'depths must be three block counts >= 1 (at /8, /16, /32), got {depths}')
        self.arch, self.width_mult, self.depths = arch, width, depths
        self.frozen_stages, self.norm_eval, self.pretrained = frozen_stages, norm_eval, pretrained
        norm = resolve_norm(norm_layer) or partial(nn.BatchNorm2d, eps=1e-3, momentum=0.03)
        act = resolve_activation(act_layer) or nn.SiLU

        def ch(c: int) -> int:
            return make_divisible(c, round_up=True, scale=width, cap=576)

        stem = ch(16)
        layers: List[nn.Module] = [
            Conv2dNormActivation(in_channels, stem, 3, stride=2, norm_layer=norm, activation_layer=act),
            Conv2dNormActivation(stem, stem, 1, norm_layer=norm, activation_layer=act),
            InvertedResidual(stem, stem, stem, 2, 3, norm_layer=norm, act_layer=act)]
        layer_strides = [2, 2, 4]
        points = [FeaturePoint('stage0', 1, False, stem, 2), FeaturePoint('stage1', 2, False, stem, 4)]
        stage_ends = [1, 2]
        # (output width, expansion of the first block, expansion of the others, kernel, number of blocks)
        rows = [(32, 96, 96, 3, depths[0]), (64, 96, 192, 5, depths[1]), (96, 576, 576, 5, depths[2])]
        channels, stride = stem, 4
        for index, (out, first_hidden, hidden, kernel, count) in enumerate(rows):
            stride *= 2
            for i in range(count):
                layers.append(InvertedResidual(channels, ch(out), ch(first_hidden if i == 0 else hidden),
                                               2 if i == 0 else 1, kernel, norm_layer=norm, act_layer=act))
                layer_strides.append(stride)
                channels = ch(out)
            points.append(FeaturePoint(f'stage{index + 2}', len(layers) - 1, False, channels, stride))
            stage_ends.append(len(layers) - 1)
        layers.append(SPPF(channels, channels, 5, norm_layer=norm, act_layer=act))
        layer_strides.append(stride)
        points.append(FeaturePoint('sppf', len(layers) - 1, False, channels, stride))
        stage_ends.append(len(layers) - 1)
        self.features = nn.Sequential(*layers)
        self._finish(points, stage_ends, out_indices, layer_strides)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        wanted = {self.feature_points[i].layer for i in self.out_indices}
        outs: Dict[int, torch.Tensor] = {}
        last = max(wanted)
        for index, layer in enumerate(self.features):
            if index > last:
                break
            x = layer(x)
            if index in wanted:
                outs[index] = x
        return [outs[self.feature_points[i].layer] for i in self.out_indices]
