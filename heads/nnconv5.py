"""NNConv5, the FastDepth decoder (Wofk et al., 2019, section III-B and Figure 2).

Five up-sampling stages, each a 5x5 depthwise convolution + BN + ReLU, a 1x1 pointwise convolution + BN + ReLU
and nearest-neighbour x2 interpolation, with channels 1024 -> 512 -> 256 -> 128 -> 64 -> 32 at MobileNet width
1.0; then a 1x1 convolution to one depth channel: in the official code (``decode_conv6 = pointwise(32, 1)``) a
1x1 conv + BN + ReLU, so depth is never negative (``final_layer='conv_bn_relu'``); ``'conv'`` is a plain 1x1
convolution with bias. Additive skip connections (section III-C) add the encoder's
feature at the stride a stage's output lands on (8, 4 and 2 in the paper) to that output.

When an encoder feature's width differs from the decoder stage's (MobileNetV2 encoders, other widths), a 1x1
conv + BN + ReLU projects it first; with MobileNetV1 at matching widths no projection is made, as in the paper.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from backbones.layers import resolve_activation, resolve_norm
from .registry import HEADS


class NNConvStage(nn.Module):
    """Depthwise kxk conv-BN-ReLU, pointwise 1x1 conv-BN-ReLU, nearest-neighbour x2 up-sampling."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, norm_layer=nn.BatchNorm2d,
                 act_layer=nn.ReLU) -> None:
        super().__init__()
        self.depthwise = Conv2dNormActivation(in_channels, in_channels, kernel_size, groups=in_channels,
                                              norm_layer=norm_layer, activation_layer=act_layer)
        self.pointwise = Conv2dNormActivation(in_channels, out_channels, 1, norm_layer=norm_layer,
                                              activation_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.pointwise(self.depthwise(x)), scale_factor=2.0, mode='nearest')


@HEADS.register_module()
class NNConv5Decoder(nn.Module):
    """Decode the deepest encoder feature to a one-channel map at stride ``in_strides[-1] / 2**len(channels)``.

    Args:
        in_channels: widths of the encoder features, by increasing stride; the last is decoded, the others are
            candidates for skips.
        in_strides: their strides (default: assume the last is stride 32 and the others 2, 4, 8, ...).
        channels: output widths of the stages (the paper: 512, 256, 128, 64, 32).
        skip_strides: strides whose encoder features are added to the stage output of that stride (the paper:
            8, 4, 2); each must be among ``in_strides``. Empty: no skips (FastDepth without skip connections).
        kernel_size: of the depthwise convolutions (the paper: 5).
        out_channels: channels of the final 1x1 convolution (1: depth).
        norm_layer / act_layer: BatchNorm2d and ReLU by default.
        bias_init: initial bias of the final layer (e.g. a typical depth in metres; the paper: not set): the bias
            of the convolution, or with ``'conv_bn_relu'`` the BatchNorm shift.
        final_layer: ``'conv'`` (1x1 convolution with bias) or ``'conv_bn_relu'`` (the official FastDepth code).
    """

    FINAL_LAYERS = ('conv', 'conv_bn_relu')

    def __init__(self, in_channels: Sequence[int], in_strides: Optional[Sequence[int]] = None,
                 channels: Sequence[int] = (512, 256, 128, 64, 32), skip_strides: Sequence[int] = (8, 4, 2),
                 kernel_size: int = 5, out_channels: int = 1, norm_layer=None, act_layer=None,
                 bias_init: Optional[float] = None, final_layer: str = 'conv') -> None:
        super().__init__()
        in_channels, channels = list(in_channels), list(channels)
        if not in_channels:
            raise ValueError('NNConv5Decoder expects at least one encoder feature, got in_channels=[]')
        if in_strides is None:
            in_strides = [2 ** (i + 1) for i in range(len(in_channels) - 1)] + [32]
        in_strides = list(in_strides)
        if len(in_strides) != len(in_channels):
            raise ValueError(f'in_strides must give one stride per encoder feature: expected {len(in_channels)} '
                             f'values, got {in_strides}')
        if not channels:
            raise ValueError('channels must list at least one decoder stage width')
        if final_layer not in self.FINAL_LAYERS:
            raise ValueError(f'final_layer must be one of {self.FINAL_LAYERS}, got {final_layer!r}')
        norm = resolve_norm(norm_layer) or nn.BatchNorm2d
        act = resolve_activation(act_layer) or nn.ReLU
        self.in_channels, self.in_strides, self.channels = in_channels, in_strides, channels
        deepest = in_strides[-1]
        stage_strides = [deepest // 2 ** (i + 1) for i in range(len(channels))]
        if deepest % 2 ** len(channels):
            raise ValueError(f'{len(channels)} x2 stages cannot start from stride {deepest}')
        self.stages = nn.ModuleList()
        previous = in_channels[-1]
        for width in channels:
            self.stages.append(NNConvStage(previous, width, kernel_size, norm, act))
            previous = width
        # skips: stage index -> encoder feature index (+ a projection when the widths differ)
        self.skip_sources = {}
        self.skip_proj = nn.ModuleDict()
        for stride in skip_strides:
            if stride not in in_strides[:-1]:
                raise ValueError(f'skip at stride {stride} needs an encoder feature of that stride; '
                                 f'in_strides are {in_strides} (the last one is decoded)')
            if stride not in stage_strides:
                raise ValueError(f'no decoder stage outputs stride {stride}; stage strides are {stage_strides}')
            source = in_strides.index(stride)
            stage = stage_strides.index(stride)
            self.skip_sources[stage] = source
            if in_channels[source] != channels[stage]:
                self.skip_proj[str(stage)] = Conv2dNormActivation(in_channels[source], channels[stage], 1,
                                                                  norm_layer=norm, activation_layer=act)
        self.skip_strides = list(skip_strides)
        self.stage_strides = stage_strides
        self.out_stride = stage_strides[-1]
        self.final_layer = final_layer
        if final_layer == 'conv':
            self.final = nn.Conv2d(previous, out_channels, 1)
            shift = self.final.bias
        else:  # pointwise(32, 1) of the official code: conv without bias, BN, ReLU
            self.final = Conv2dNormActivation(previous, out_channels, 1, norm_layer=norm, activation_layer=nn.ReLU)
            shift = self.final[1].bias
        if bias_init is not None:
            nn.init.constant_(shift, bias_init)
        self.out_channels = out_channels

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        if len(features) != len(self.in_channels):
            raise ValueError(f'NNConv5Decoder expects {len(self.in_channels)} features, got {len(features)}')
        x = features[-1]
        for index, stage in enumerate(self.stages):
            x = stage(x)
            source = self.skip_sources.get(index)
            if source is not None:
                skip = features[source]
                if str(index) in self.skip_proj:
                    skip = self.skip_proj[str(index)](skip)
                if skip.shape[-2:] != x.shape[-2:]:  # inputs that are not a multiple of the deepest stride
                    x = F.interpolate(x, size=skip.shape[-2:], mode='nearest')
                x = x + skip
        return self.final(x)
