"""3D blocks of the reversible U-Net (Pendse et al., "Memory Efficient 3D U-Net with Reversible Mobile Inverted
Bottlenecks for Brain Tumor Segmentation", section 2): the mobile inverted bottleneck (MBConv, MobileNetV2 section
3.3 / EfficientNet) in 3D, with optional squeeze-excitation (Hu et al., 2018) and stochastic depth.

Normalisation defaults to GroupNorm: the reversible backward pass recomputes every block, and batch statistics
(BatchNorm running means) would otherwise be updated twice per step.
"""
from __future__ import annotations

from math import gcd
from typing import Callable, Optional, Union

import torch
from torch import nn
from torchvision.ops.misc import Conv3dNormActivation, SqueezeExcitation

from .layers import make_divisible, resolve_activation, resolve_layer

LayerFactory = Callable[..., nn.Module]


def group_norm(num_channels: int, num_groups: int = 8, eps: float = 1e-5) -> nn.GroupNorm:
    """GroupNorm with ``num_groups`` groups, or the largest count that divides ``num_channels``."""
    return nn.GroupNorm(gcd(num_groups, num_channels), num_channels, eps=eps)


def instance_norm(num_channels: int, eps: float = 1e-5) -> nn.InstanceNorm3d:
    """InstanceNorm3d with a learnable affine (the usual choice for BraTS U-Nets, e.g. nnU-Net)."""
    return nn.InstanceNorm3d(num_channels, eps=eps, affine=True)


_NORMS3D = {'gn': group_norm, 'groupnorm': group_norm, 'in': instance_norm, 'instancenorm': instance_norm,
            'bn': nn.BatchNorm3d, 'batchnorm': nn.BatchNorm3d, 'syncbn': nn.SyncBatchNorm}


def resolve_norm3d(layer: Union[str, dict, LayerFactory, None]) -> Optional[LayerFactory]:
    """A 3D norm factory from ``'gn'`` / ``'in'`` / ``'bn'``, ``{'type': 'gn', 'num_groups': 4}`` or a callable."""
    return resolve_layer(layer, _NORMS3D)


class SqueezeExcitation3d(SqueezeExcitation):
    """torchvision's squeeze-excitation with 3D pooling and 1x1x1 convolutions (Hu et al., 2018, section 3)."""

    def __init__(self, input_channels: int, squeeze_channels: int,
                 activation: LayerFactory = nn.ReLU, scale_activation: LayerFactory = nn.Sigmoid) -> None:
        super().__init__(input_channels, squeeze_channels, activation, scale_activation)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Conv3d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv3d(squeeze_channels, input_channels, 1)


class DropPath(nn.Module):
    """Stochastic depth per sample (Huang et al., 2016): zero a residual branch with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f'drop-path probability must be in [0, 1), got {p}')
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)


class MBConv3d(nn.Module):
    """1x1x1 expansion -> kxkxk depthwise -> (squeeze-excitation) -> 1x1x1 linear projection (-> drop path).

    ``residual=True`` adds the input when shapes allow (MobileNetV2); inside a reversible coupling the coupling
    itself supplies the residual, so the block is built with ``residual=False`` as the function F or G.
    """

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: float = 4.0, kernel_size: int = 3,
                 stride: int = 1, use_se: bool = False, se_ratio: float = 0.25, norm_layer='gn',
                 act_layer='relu6', drop_path: float = 0.0, residual: bool = True) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        norm = resolve_norm3d(norm_layer)
        act = resolve_activation(act_layer)
        hidden = int(round(in_channels * expand_ratio))
        if hidden < 1:
            raise ValueError(f'expand_ratio {expand_ratio} leaves no hidden channels for {in_channels} inputs')
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, hidden
        self.stride = stride
        self.use_residual = residual and stride == 1 and in_channels == out_channels
        self.expand = (Conv3dNormActivation(in_channels, hidden, 1, norm_layer=norm, activation_layer=act)
                       if hidden != in_channels else None)
        self.depthwise = Conv3dNormActivation(hidden, hidden, kernel_size, stride=stride, groups=hidden,
                                              norm_layer=norm, activation_layer=act)
        self.se = (SqueezeExcitation3d(hidden, max(1, make_divisible(hidden * se_ratio, 4, 1)))
                   if use_se else None)
        self.project = Conv3dNormActivation(hidden, out_channels, 1, norm_layer=norm, activation_layer=None)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        return out + x if self.use_residual else out


__all__ = ['MBConv3d', 'SqueezeExcitation3d', 'DropPath', 'group_norm', 'instance_norm', 'resolve_norm3d']
