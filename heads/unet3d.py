"""The decoder of the reversible 3D U-Net (Pendse et al., section 2; U-Net: Çiçek et al., 2016).

From the deepest encoder level up: 2x transposed-convolution up-sampling, concatenation with the encoder skip of
that level, a 1x1x1 fusion convolution back to the level's width, then a reversible MBConv stage (depth 0 gives a
plain decoder level); a final 1x1x1 convolution gives ``num_classes`` logit maps at the input resolution.
"""
from __future__ import annotations

from typing import List, Sequence, Union

import torch
from torch import nn
from torchvision.ops.misc import Conv3dNormActivation

from backbones.layers import resolve_activation
from backbones.layers3d import resolve_norm3d
from backbones.reversible import HasReversibleStages
from backbones.reversible_unet3d import reversible_mbconv_stage
from .registry import HEADS


@HEADS.register_module()
class UNet3dHead(HasReversibleStages, nn.Module):
    """U-Net decoder over encoder features ``[f0, ..., fL]`` at strides ``[1, 2, ..., 2**L]``.

    Args:
        in_channels: widths of the encoder levels, shallowest first (``backbone.out_channels``).
        num_classes: output maps (3 for the BraTS regions WT, TC, ET).
        depths: reversible couplings per decoder level, shallowest first (``len(in_channels) - 1`` entries) or
            one number for all.
        strides: the encoder strides, checked to double level by level.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int = 3, depths: Union[int, Sequence[int]] = 1,
                 expand_ratio: float = 4.0, kernel_size: int = 3, use_se: bool = False, norm_layer='gn',
                 act_layer='relu6', reversible: bool = True, strides: Sequence[int] = ()) -> None:
        super().__init__()
        in_channels = list(in_channels)
        if len(in_channels) < 2:
            raise ValueError(f'UNet3dHead needs at least two encoder levels, got in_channels={in_channels}')
        levels = len(in_channels) - 1
        depths = [depths] * levels if isinstance(depths, int) else list(depths)
        if len(depths) != levels:
            raise ValueError(f'expected {levels} decoder depths (one per level below the deepest), got {depths}')
        if strides and [strides[i + 1] // strides[i] for i in range(levels)] != [2] * levels:
            raise ValueError(f'encoder strides must double from level to level, got {list(strides)}')
        norm, act = resolve_norm3d(norm_layer), resolve_activation(act_layer)
        self.ups, self.fuses, self.stages = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i in range(levels):  # index i: decoder level at the resolution of encoder level i
            self.ups.append(nn.ConvTranspose3d(in_channels[i + 1], in_channels[i], 2, stride=2))
            self.fuses.append(Conv3dNormActivation(2 * in_channels[i], in_channels[i], 1, norm_layer=norm,
                                                   activation_layer=act))
            self.stages.append(reversible_mbconv_stage(in_channels[i], depths[i], expand_ratio, kernel_size, use_se,
                                                       norm_layer, act_layer, 0.0, reversible))
        self.classifier = nn.Conv3d(in_channels[0], num_classes, 1)
        self.in_channels, self.num_classes = in_channels, num_classes
        self.out_channels = [num_classes]

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != len(self.in_channels):
            raise ValueError(f'expected {len(self.in_channels)} feature maps, got {len(features)}')
        x = features[-1]
        for i in reversed(range(len(self.stages))):
            up = self.ups[i](x)
            skip = features[i]
            if up.shape[2:] != skip.shape[2:]:
                raise ValueError(f'up-sampled level {i + 1} {tuple(up.shape[2:])} does not match the skip '
                                 f'{tuple(skip.shape[2:])}: the input size must be divisible by '
                                 f'{2 ** (len(self.in_channels) - 1)}')
            x = self.stages[i](self.fuses[i](torch.cat([up, skip], dim=1)))
        return self.classifier(x)


__all__: List[str] = ['UNet3dHead']
