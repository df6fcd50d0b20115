"""MobileNetV2 (Sandler et al., 2018) and MobileNetV3 (Howard et al., 2019) feature extractors.

Both are a stem convolution, a run of inverted residual blocks and a final 1x1 convolution, kept in one
``nn.Sequential`` called ``features`` (so the layer indices match torchvision's and weights convert by key).
Features can be taken at every stage (a run of blocks with the same output width), at the expansion output of
the first block of the last stage (the tap SSDLite uses, MobileNetV2 section 6.2) and after the final
convolution. ``feature_names`` lists them in depth order; ``out_indices`` picks from that list.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from .base import FeaturePoint, FeaturePointBackbone
from .layers import InvertedResidual, make_divisible, resolve_activation, resolve_norm
from .registry import BACKBONES


@dataclass(frozen=True)
class BlockSpec:
    """One inverted residual block: kernel, expanded width, output width, SE, activation, stride."""
    kernel: int
    hidden: int  # expanded width at width_mult 1.0 (V3) or the expansion ratio t (V2, see ``ratio``)
    out: int
    use_se: bool
    act: str
    stride: int
    ratio: bool = False  # True when ``hidden`` is an expansion ratio (MobileNetV2 t)


def _v2_specs() -> List[BlockSpec]:
    """MobileNetV2 paper, Table 2: rows of (t, c, n, s)."""
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1)]
    specs = []
    for t, c, n, s in table:
        for i in range(n):
            specs.append(BlockSpec(3, t, c, False, 'relu6', s if i == 0 else 1, ratio=True))
    return specs


def _v3_specs(arch: str, reduce_tail: bool) -> List[BlockSpec]:
    """MobileNetV3 paper, Tables 1 (large) and 2 (small); ``reduce_tail`` halves the last stage (section 6.1.1)."""
    d = 2 if reduce_tail else 1
    if arch == 'large':
        rows = [(3, 16, 16, False, 'relu', 1), (3, 64, 24, False, 'relu', 2), (3, 72, 24, False, 'relu', 1),
                (5, 72, 40, True, 'relu', 2), (5, 120, 40, True, 'relu', 1), (5, 120, 40, True, 'relu', 1),
                (3, 240, 80, False, 'hardswish', 2), (3, 200, 80, False, 'hardswish', 1),
                (3, 184, 80, False, 'hardswish', 1), (3, 184, 80, False, 'hardswish', 1),
                (3, 480, 112, True, 'hardswish', 1), (3, 672, 112, True, 'hardswish', 1),
                (5, 672, 160 // d, True, 'hardswish', 2), (5, 960 // d, 160 // d, True, 'hardswish', 1),
                (5, 960 // d, 160 // d, True, 'hardswish', 1)]
    elif arch == 'small':
        rows = [(3, 16, 16, True, 'relu', 2), (3, 72, 24, False, 'relu', 2), (3, 88, 24, False, 'relu', 1),
                (5, 96, 40, True, 'hardswish', 2), (5, 240, 40, True, 'hardswish', 1),
                (5, 240, 40, True, 'hardswish', 1), (5, 120, 48, True, 'hardswish', 1),
                (5, 144, 48, True, 'hardswish', 1), (5, 288, 96 // d, True, 'hardswish', 2),
                (5, 576 // d, 96 // d, True, 'hardswish', 1), (5, 576 // d, 96 // d, True, 'hardswish', 1)]
    else:
        raise ValueError(f"arch must be 'large' or 'small', got {arch!r}")
    return [BlockSpec(*row) for row in rows]


class MobileNetBase(FeaturePointBackbone):
    """Stem + inverted residual blocks + final 1x1 conv, with feature taps, dilation and freezing."""

    stem_channels: int = 32
    stem_act: str = 'relu6'
    last_act: str = 'relu6'

    def __init__(self, specs: List[BlockSpec], last_channels: int, width_mult: float = 1.0,
                 out_indices: Optional[Sequence[Union[int, str]]] = None, output_stride: int = 32,
                 frozen_stages: int = -1, norm_eval: bool = False, norm_layer=None, act_layer=None,
                 in_channels: int = 3, pretrained: Optional[str] = None) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f'output_stride must be 8, 16 or 32, got {output_stride}')
        self.width_mult, self.output_stride = width_mult, output_stride
        self.frozen_stages, self.norm_eval, self.pretrained = frozen_stages, norm_eval, pretrained
        norm = resolve_norm(norm_layer) or nn.BatchNorm2d
        act_override = resolve_activation(act_layer)

        def act(name: str):
            return act_override or resolve_activation(name)

        stem_out = make_divisible(self.stem_channels * width_mult)
        layers: List[nn.Module] = [Conv2dNormActivation(in_channels, stem_out, 3, stride=2, norm_layer=norm,
                                                        activation_layer=act(self.stem_act))]
        points: List[FeaturePoint] = []
        channels, stride, nominal, dilation = stem_out, 2, 2, 1
        layer_strides = [stride]  # output stride of each layer of ``features``
        stage_end: List[int] = []
        for i, spec in enumerate(specs):
            out = make_divisible(spec.out * width_mult)
            hidden = int(round(channels * spec.hidden)) if spec.ratio else make_divisible(spec.hidden * width_mult)
            block_stride = spec.stride
            if stride * spec.stride > output_stride:  # dilate instead of striding (DeepLabv3, section 3.1)
                dilation *= spec.stride
                block_stride = 1
            if spec.stride == 2 and nominal == 16:  # SSDLite's tap: expansion of the first stride-32 block
                points.append(FeaturePoint(f'layer{len(layers)}_expand', len(layers), True, hidden, stride))
            nominal *= spec.stride
            stride *= block_stride
            layers.append(InvertedResidual(channels, out, hidden, block_stride, spec.kernel, dilation, spec.use_se,
                                           norm, act(spec.act)))
            layer_strides.append(stride)
            channels = out
            last_of_stage = i + 1 == len(specs) or specs[i + 1].out != spec.out  # stages by the paper's widths
            if last_of_stage:
                points.append(FeaturePoint(f'stage{len(stage_end)}', len(layers) - 1, False, out, stride))
                stage_end.append(len(layers) - 1)
        layers.append(Conv2dNormActivation(channels, last_channels, 1, norm_layer=norm,
                                           activation_layer=act(self.last_act)))
        points.append(FeaturePoint('last_conv', len(layers) - 1, False, last_channels, stride))
        self.features = nn.Sequential(*layers)
        layer_strides.append(stride)
        self._finish(points, stage_end + [len(layers) - 1], out_indices, layer_strides)

    # --- running -----------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        wanted = {self.feature_points[i].layer: [] for i in self.out_indices}
        for i in self.out_indices:
            wanted[self.feature_points[i].layer].append(self.feature_points[i])
        outs = {}
        last = max(wanted)
        for index, layer in enumerate(self.features):
            if index > last:
                break
            points = wanted.get(index, [])
            if any(p.expanded for p in points):
                x, expanded = layer(x, return_expanded=True)
            else:
                x, expanded = layer(x), None
            for p in points:
                outs[p.name] = expanded if p.expanded else x
        return [outs[self.feature_points[i].name] for i in self.out_indices]


@BACKBONES.register_module()
class MobileNetV2(MobileNetBase):
    """MobileNetV2 (Sandler et al., 2018, Table 2).

    Feature points at width 1.0 (name: channels, stride): stage0 16/2, stage1 24/4, stage2 32/8, stage3 64/16,
    stage4 96/16, layer14_expand 576/16 (SSDLite's first map), stage5 160/32, stage6 320/32, last_conv 1280/32.
    """

    def __init__(self, width_mult: float = 1.0, out_indices: Optional[Sequence[Union[int, str]]] = None, output_stride: int = 32,
                 frozen_stages: int = -1, norm_eval: bool = False, norm_layer=None, act_layer=None,
                 in_channels: int = 3, pretrained: Optional[str] = None) -> None:
        last = make_divisible(1280 * max(1.0, width_mult))  # the last conv does not shrink below 1.0 (sec. 6.1)
        super().__init__(_v2_specs(), last, width_mult, out_indices, output_stride, frozen_stages, norm_eval,
                         norm_layer, act_layer, in_channels, pretrained)


@BACKBONES.register_module()
class MobileNetV3(MobileNetBase):
    """MobileNetV3-Large/Small (Howard et al., 2019, Tables 1-2); ``reduced_tail`` halves the last stage.

    Large feature points (width 1.0): stage0 16/2, stage1 24/4, stage2 40/8, stage3 80/16, stage4 112/16,
    layer13_expand 672/16, stage5 160/32, last_conv 960/32. Small: stage0 16/4, stage1 24/8, stage2 40/16,
    stage3 48/16, layer9_expand 288/16, stage4 96/32, last_conv 576/32.
    """

    stem_channels = 16
    stem_act = 'hardswish'
    last_act = 'hardswish'

    def __init__(self, arch: str = 'large', width_mult: float = 1.0, out_indices: Optional[Sequence[Union[int, str]]] = None,
                 output_stride: int = 32, frozen_stages: int = -1, norm_eval: bool = False, norm_layer=None,
                 act_layer=None, reduced_tail: bool = False, in_channels: int = 3,
                 pretrained: Optional[str] = None) -> None:
        self.arch = arch
        specs = _v3_specs(arch, reduced_tail)
        last = 6 * make_divisible(specs[-1].out * width_mult)
        if norm_layer is None:  # torchvision's MobileNetV3 uses eps=0.001, momentum=0.01
            from functools import partial
            norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        super().__init__(specs, last, width_mult, out_indices, output_stride, frozen_stages, norm_eval, norm_layer,
                         act_layer, in_channels, pretrained)
