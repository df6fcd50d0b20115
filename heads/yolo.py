"""Decoupled anchor-free YOLO head, LeYOLO's "DNiN" form (Hollard et al., 2024, section 3.3).

Per level, two branches on the neck map:

* box: 1x1 conv -> ``box_channels`` (64), depthwise 3x3, depthwise 3x3, 1x1 conv -> ``4 * reg_max``;
* class: 1x1 conv -> ``max(c0, min(K, 100))`` (``c0`` = width of the first level), depthwise 3x3, depthwise 3x3,
  1x1 conv -> ``K``.

Every conv but the last of a branch has BatchNorm + SiLU; the last has a bias. The output of a level is one map
``(B, 4 * reg_max + K, H, W)``, box channels first, side-major (channel ``side * reg_max + bin``, sides l, t, r,
b): the discrete distance distributions of Generalized Focal Loss (Li et al., 2020, section 3.3), then the class
logits (sigmoid scores, no objectness). Bias init (YOLOv8's design): box 1.0, class
``log(5 / K / (640 / stride)^2)`` (about 5 objects per 640 x 640 image a priori).
"""
from __future__ import annotations

import math
from functools import partial
from typing import List, Optional, Sequence

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from backbones.layers import resolve_activation, resolve_norm
from .registry import HEADS


def _branch(in_channels: int, mid: int, out: int, norm, act) -> nn.Sequential:
    return nn.Sequential(
        Conv2dNormActivation(in_channels, mid, 1, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, mid, 3, groups=mid, norm_layer=norm, activation_layer=act),
        Conv2dNormActivation(mid, mid, 3, groups=mid, norm_layer=norm, activation_layer=act),
        nn.Conv2d(mid, out, 1))


@HEADS.register_module()
class YOLOHead(nn.Module):
    """``forward(feats) -> list[(B, 4 * reg_max + K, H_l, W_l)]``, one map per level."""

    def __init__(self, in_channels: Sequence[int], num_classes: int, reg_max: int = 16,
                 strides: Sequence[int] = (8, 16, 32), box_channels: Optional[int] = None,
                 cls_channels: Optional[int] = None, prior_image_size: int = 640, norm_layer=None,
                 act_layer='silu') -> None:
        super().__init__()
        in_channels = [int(c) for c in in_channels]
        if len(in_channels) != len(strides):
            raise ValueError(f'YOLOHead needs one stride per input map: {len(in_channels)} maps, strides {strides}')
        if num_classes < 1 or reg_max < 1:
            raise ValueError(f'num_classes and reg_max must be >= 1, got {num_classes}, {reg_max}')
        norm = resolve_norm(norm_layer) or partial(nn.BatchNorm2d, eps=1e-3, momentum=0.03)
        act = resolve_activation(act_layer) or nn.SiLU
        self.in_channels, self.num_classes, self.reg_max = in_channels, num_classes, reg_max
        self.strides = [int(s) for s in strides]
        self.box_channels = box_channels or 4 * reg_max
        self.cls_channels = cls_channels or max(in_channels[0], min(num_classes, 100))
        self.prior_image_size = prior_image_size
        self.box_branches = nn.ModuleList(_branch(c, self.box_channels, 4 * reg_max, norm, act) for c in in_channels)
        self.cls_branches = nn.ModuleList(_branch(c, self.cls_channels, num_classes, norm, act) for c in in_channels)
        self.out_channels = [4 * reg_max + num_classes] * len(in_channels)
        self.init_weights()

    def init_weights(self) -> None:
        """Box bias 1.0; class bias ``log(5 / K / (640 / stride)^2)``."""
        for box, cls, stride in zip(self.box_branches, self.cls_branches, self.strides):
            nn.init.constant_(box[-1].bias, 1.0)
            cells = (self.prior_image_size / stride) ** 2
            nn.init.constant_(cls[-1].bias, math.log(5 / self.num_classes / cells))

    def forward(self, feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        if len(feats) != len(self.box_branches):
            raise ValueError(f'YOLOHead was built for {len(self.box_branches)} maps, got {len(feats)}')
        return [torch.cat([box(x), cls(x)], 1) for x, box, cls in zip(feats, self.box_branches, self.cls_branches)]
