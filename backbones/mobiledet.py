"""MobileDet-CPU (Xiong et al., "MobileDets: Searching for Object Detection Architectures for Mobile Accelerators",
CVPR 2021): the network searched for mobile CPUs (the paper's figure of the CPU model, and the TF object detection API's
``ssd_mobiledet_feature_extractor.mobiledet_cpu_backbone``).

On CPUs the search picked only inverted bottlenecks (IBN), all with squeeze-excitation and h-swish (the TF
feature extractor has no fused or Tucker convolution in the CPU model): a 3x3 stride-2 conv (16), an IBN without expansion (8), then IBNs whose
rows are (output width, expansion, kernel, stride, residual) below. Squeeze-excitation: global pooling, 1x1 conv to
a quarter of the expanded width (rounded to a multiple of 8) + h-swish, 1x1 conv back + sigmoid. Some stride-1
blocks with equal widths were searched without a residual connection; ``residual`` keeps that. BatchNorm eps 0.01,
momentum 0.01 (TF decay 0.99). Endpoints: c1 8/2, c2 16/4, c3 32/8, c4 72/16, c5 144/32; SSDLite takes c4 and c5.
"""
from __future__ import annotations

from functools import partial
from typing import Dict, List, Optional, Tuple

from torch import nn
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

from .layers import InvertedResidual, make_divisible, resolve_activation, resolve_norm
from .registry import BACKBONES
from .staged import OutIndices, StagedBackbone

#: endpoint -> rows of (out, expansion, kernel, stride, residual); the first c1 row is the IBN without expansion
MOBILEDET_ARCHS: Dict[str, Dict[str, List[Tuple[int, int, int, int, bool]]]] = {
    'cpu': {
        'c1': [(8, 1, 3, 1, False)],
        'c2': [(16, 4, 3, 2, False)],
        'c3': [(32, 8, 3, 2, False), (32, 4, 3, 1, True), (32, 4, 3, 1, True), (32, 4, 3, 1, True)],
        'c4': [(72, 8, 5, 2, False), (72, 8, 3, 1, True), (72, 4, 5, 1, True), (72, 4, 3, 1, True),
               (72, 8, 3, 1, False), (72, 8, 3, 1, True), (72, 8, 3, 1, True), (72, 8, 3, 1, True)],
        'c5': [(104, 8, 5, 2, False), (104, 4, 5, 1, True), (104, 4, 5, 1, True), (104, 4, 3, 1, True),
               (144, 8, 3, 1, False)],
    },
}


@BACKBONES.register_module()
class MobileDet(StagedBackbone):
    """MobileDet-CPU backbone. ``features`` = [stem, c1, c2, c3, c4, c5]; default ``out_indices`` = c2..c5.

    ``width_mult`` scales every width (the TF depth multiplier: round half up to a multiple of 8).
    """

    def __init__(self, arch: str = 'cpu', width_mult: float = 1.0, out_indices: OutIndices = None,
                 frozen_stages: int = -1, norm_eval: bool = False, norm_layer=None, act_layer=None,
                 in_channels: int = 3, pretrained: Optional[str] = None) -> None:
        super().__init__()
        if arch not in MOBILEDET_ARCHS:
            raise ValueError(f'arch must be one of {sorted(MOBILEDET_ARCHS)}, got {arch!r}')
        self.arch, self.width_mult = arch, width_mult
        self.frozen_stages, self.norm_eval, self.pretrained = frozen_stages, norm_eval, pretrained
        norm = resolve_norm(norm_layer) or partial(nn.BatchNorm2d, eps=0.01, momentum=0.01)
        act = resolve_activation(act_layer) or nn.Hardswish
        se = partial(SqueezeExcitation, activation=act, scale_activation=nn.Sigmoid)

        def scale(c: int) -> int:  # TF _scale_filters: round half up to a multiple of 8, at least 8
            return max(8, int(c * width_mult / 8 + 0.5) * 8)

        channels = scale(16)
        stem = Conv2dNormActivation(in_channels, channels, 3, stride=2, norm_layer=norm, activation_layer=act)
        stem.out_channels = channels
        layers: List[nn.Module] = [stem]
        points = [('stem', 0, channels, 2)]
        strides, stride = [2], 2
        for name, rows in MOBILEDET_ARCHS[arch].items():
            blocks = []
            for out, expansion, kernel, s, residual in rows:
                out = scale(out)
                block = InvertedResidual(channels, out, channels * expansion, s, kernel, use_se=True,
                                         norm_layer=norm, act_layer=act, se_layer=se)
                if block.use_residual != residual:  # searched stride-1 blocks without a shortcut
                    block.use_residual = residual
                blocks.append(block)
                channels, stride = out, stride * s
            stage = nn.Sequential(*blocks)
            stage.out_channels = channels
            layers.append(stage)
            points.append((name, len(layers) - 1, channels, stride))
            strides.append(stride)
        self.features = nn.Sequential(*layers)
        self._finish_staged(points, [1, 2, 3, 4, 5], out_indices, ('c2', 'c3', 'c4', 'c5'), strides)


def squeeze_channels(hidden: int) -> int:
    """The squeeze width InvertedResidual gives a block of expanded width ``hidden`` (= TF's rounding here)."""
    return make_divisible(hidden // 4, 8)
