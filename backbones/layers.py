"""Blocks shared by the mobile backbones.

The inverted residual with linear bottleneck is MobileNetV2 (Sandler et al., 2018, section 3.3 and Table 1);
the optional squeeze-excitation and hard-swish variant is MobileNetV3 (Howard et al., 2019, section 5.1).
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable, Optional, Union

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

LayerFactory = Callable[..., nn.Module]

_ACTIVATIONS = {'relu': nn.ReLU, 'relu6': nn.ReLU6, 'hardswish': nn.Hardswish, 'hswish': nn.Hardswish,
                'silu': nn.SiLU, 'tanh': nn.Tanh, 'identity': nn.Identity}
_NORMS = {'bn': nn.BatchNorm2d, 'batchnorm': nn.BatchNorm2d, 'syncbn': nn.SyncBatchNorm,
          'in': nn.InstanceNorm2d, 'gn': partial(nn.GroupNorm, 8)}


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None, round_up: bool = False,
                   scale: float = 1.0, cap: Optional[float] = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10% (MobileNetV2, sec. 6.1).

    ``value`` is first capped at ``cap`` (when given) and then multiplied by ``scale``. ``round_up=True`` rounds
    up to the next multiple instead (LeYOLO's width scaling: ``cap=576``, "channels rounded up to a multiple of 8";
    MobileNet's round-to-nearest gives other widths). The defaults keep the MobileNet behaviour.
    """
    if cap is not None:
        value = min(value, cap)
    value = value * scale
    min_value = divisor if min_value is None else min_value
    if round_up:
        return max(min_value, int(math.ceil(value / divisor - 1e-9)) * divisor)
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def resolve_layer(layer: Union[str, LayerFactory, dict, None], table: dict) -> Optional[LayerFactory]:
    """Turn a config value (a name such as ``'relu6'``, a dict ``{'type': 'BN', ...}`` or a class) into a factory."""
    if layer is None or callable(layer):
        return layer
    if isinstance(layer, str):
        key = layer.lower()
        if key not in table:
            raise ValueError(f'unknown layer {layer!r}; expected one of {sorted(table)}')
        return table[key]
    if isinstance(layer, dict):
        kwargs = dict(layer)
        factory = resolve_layer(kwargs.pop('type'), table)
        return partial(factory, **kwargs)
    raise TypeError(f'cannot make a layer from {layer!r}')


def resolve_activation(layer) -> Optional[LayerFactory]:
    return resolve_layer(layer, _ACTIVATIONS)


def resolve_norm(layer) -> Optional[LayerFactory]:
    return resolve_layer(layer, _NORMS)


def normal_init(module: nn.Module, std: float = 0.03) -> None:
    """Normal(0, std) convolution weights and zero biases (SSDLite's initialisation, TF object detection API)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class InvertedResidual(nn.Module):
    """Expansion 1x1 -> depthwise kxk -> (squeeze-excitation) -> linear 1x1 projection, residual when shapes match.

    ``forward(x, return_expanded=True)`` also returns the expansion output, the tap SSDLite uses
    (MobileNetV2 paper, section 6.2).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, stride: int = 1,
                 kernel_size: int = 3, dilation: int = 1, use_se: bool = False,
                 norm_layer: LayerFactory = nn.BatchNorm2d, act_layer: LayerFactory = nn.ReLU6,
                 se_layer: Optional[LayerFactory] = None) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, hidden_channels
        self.stride, self.dilation = stride, dilation
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = (Conv2dNormActivation(in_channels, hidden_channels, 1, norm_layer=norm_layer,
                                            activation_layer=act_layer)
                       if hidden_channels != in_channels else None)
        self.depthwise = Conv2dNormActivation(hidden_channels, hidden_channels, kernel_size, stride=stride,
                                              dilation=dilation, groups=hidden_channels, norm_layer=norm_layer,
                                              activation_layer=act_layer)
        if use_se:
            se_layer = se_layer or partial(SqueezeExcitation, scale_activation=nn.Hardsigmoid)
            self.se = se_layer(hidden_channels, make_divisible(hidden_channels // 4, 8))
        else:
            self.se = None
        self.project = Conv2dNormActivation(hidden_channels, out_channels, 1, norm_layer=norm_layer,
                                            activation_layer=None)

    def forward(self, x: torch.Tensor, return_expanded: bool = False):
        expanded = self.expand(x) if self.expand is not None else x
        out = self.depthwise(expanded)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        if self.use_residual:
            out += x  # in place: the projection's output is not needed by its own backward
        return (out, expanded) if return_expanded else out


class SPPF(nn.Module):
    """Fast spatial pyramid pooling (YOLOv5/v8 design, as LeYOLO uses it): 1x1 conv to half the channels, three
    chained ``k x k`` stride-1 max-pools (receptive fields 5, 9, 13 for ``k=5``), concatenation of the four maps,
    1x1 conv to ``out_channels``; norm and activation after both convolutions."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 norm_layer: LayerFactory = nn.BatchNorm2d, act_layer: LayerFactory = nn.SiLU) -> None:
        super().__init__()
        hidden = in_channels // 2
        self.in_channels, self.out_channels = in_channels, out_channels
        self.reduce = Conv2dNormActivation(in_channels, hidden, 1, norm_layer=norm_layer, activation_layer=act_layer)
        self.pool = nn.MaxPool2d(kernel_size, stride=1, padding=kernel_size // 2)
        self.fuse = Conv2dNormActivation(4 * hidden, out_channels, 1, norm_layer=norm_layer,
                                         activation_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [self.reduce(x)]
        for _ in range(3):
            maps.append(self.pool(maps[-1]))
        return self.fuse(torch.cat(maps, 1))
