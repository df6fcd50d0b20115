"""MobileNetV1 (Howard et al., 2017): a stem convolution and 13 depthwise-separable blocks (paper, Table 1).

Each block is a 3x3 depthwise convolution + BN + ReLU followed by a 1x1 pointwise convolution + BN + ReLU
(paper, Figure 3). The width multiplier alpha (section 3.3) scales every layer's channels; we round them to a
multiple of 8 like our MobileNetV2. Features can be taken at the end of each stage (a run of blocks with one
output stride): ``stage0`` 64/2, ``stage1`` 128/4, ``stage2`` 256/8, ``stage3`` 512/16, ``stage4`` 1024/32 at
width 1.0 — FastDepth takes its skip connections from the first three and decodes the last.

``widths`` sets every layer's output channels instead (the stem and the 13 blocks, 14 numbers): the networks
``tools/prune.py`` makes by NetAdapt-style channel pruning (Yang et al., 2018) have one width per layer. FastDepth's
official encoder uses ReLU6 (``act_layer='ReLU6'``); the paper's Figure 3 draws ReLU, our default.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from .base import FeaturePoint, FeaturePointBackbone
from .layers import make_divisible, resolve_activation, resolve_norm
from .registry import BACKBONES

# Table 1 of the paper after the stem (3x3 conv, 32 channels, stride 2): (output channels, stride) per block.
V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
             (512, 1), (1024, 2), (1024, 1)]


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 conv-BN-act then pointwise 1x1 conv-BN-act (MobileNetV1, Figure 3)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.depthwise = Conv2dNormActivation(in_channels, in_channels, 3, stride=stride, dilation=dilation,
                                              groups=in_channels, norm_layer=norm_layer, activation_layer=act_layer)
        self.pointwise = Conv2dNormActivation(in_channels, out_channels, 1, norm_layer=norm_layer,
                                              activation_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


@BACKBONES.register_module()
class MobileNetV1(FeaturePointBackbone):
    """MobileNetV1 feature extractor with the options of our MobileNetV2.

    Args:
        width_mult: the width multiplier alpha (section 3.3).
        out_indices: increasing indices into ``feature_names`` (default: the last, ``stage4``).
        output_stride: 8, 16 or 32; deeper stride-2 blocks are dilated instead (DeepLabv3, section 3.1).
        frozen_stages: freeze the stem and stages ``0..frozen_stages`` (-1: nothing frozen).
        norm_eval: keep BatchNorm layers in eval mode while training.
        norm_layer / act_layer: overrides (names, dicts or classes); defaults BatchNorm2d and ReLU (the paper).
        in_channels: channels of the input image.
        pretrained: a checkpoint for ``init_weights`` (ours, or a full model's with ``backbone.`` keys).
        widths: output channels of the stem and of each of the 13 blocks (14 positive integers), e.g. of a pruned
            network; overrides ``width_mult``.
    """

    def __init__(self, width_mult: float = 1.0, out_indices: Optional[Sequence[Union[int, str]]] = None, output_stride: int = 32,
                 frozen_stages: int = -1, norm_eval: bool = False, norm_layer=None, act_layer=None,
                 in_channels: int = 3, pretrained: Optional[str] = None,
                 widths: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f'output_stride must be 8, 16 or 32, got {output_stride}')
        if width_mult <= 0:
            raise ValueError(f'width_mult must be positive, got {width_mult}')
        self.width_mult, self.output_stride = width_mult, output_stride
        self.frozen_stages, self.norm_eval, self.pretrained = frozen_stages, norm_eval, pretrained
        if widths is None:
            widths = [make_divisible(c * width_mult) for c in [32] + [out for out, _ in V1_BLOCKS]]
        widths = [int(w) for w in widths]
        if len(widths) != len(V1_BLOCKS) + 1 or min(widths) < 1:
            raise ValueError(f'widths must give {len(V1_BLOCKS) + 1} positive channel counts (the stem and each '
                             f'block), got {widths}')
        self.widths = widths
        norm = resolve_norm(norm_layer) or nn.BatchNorm2d
        act = resolve_activation(act_layer) or nn.ReLU

        channels = widths[0]
        layers: List[nn.Module] = [Conv2dNormActivation(in_channels, channels, 3, stride=2, norm_layer=norm,
                                                        activation_layer=act)]
        taps: List[FeaturePoint] = []
        stride, dilation = 2, 1
        layer_strides = [stride]  # output stride of each layer of ``features``
        for i, (_, block_stride) in enumerate(V1_BLOCKS):
            out = widths[i + 1]
            if block_stride == 2 and stride * 2 > output_stride:
                dilation *= 2
                block_stride = 1
            stride *= block_stride
            layers.append(DepthwiseSeparable(channels, out, block_stride, dilation, norm, act))
            layer_strides.append(stride)
            channels = out
            next_stride = V1_BLOCKS[i + 1][1] if i + 1 < len(V1_BLOCKS) else 2
            if next_stride == 2:  # the last block before a stride-2 block ends a stage
                taps.append(FeaturePoint(f'stage{len(taps)}', len(layers) - 1, False, channels, stride))
        self.features = nn.Sequential(*layers)
        self._finish(taps, [t.layer for t in taps], out_indices, layer_strides)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        wanted = {self.feature_points[i].layer: i for i in self.out_indices}
        last = max(wanted)
        outs = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                outs[wanted[index]] = x
            if index == last:
                break
        return [outs[i] for i in self.out_indices]
