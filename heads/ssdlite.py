"""SSDLite prediction head (MobileNetV2 paper, section 6.2): every prediction layer is depthwise separable.

For each feature map a 3x3 depthwise convolution (with BatchNorm and ReLU6) is followed by a 1x1 convolution to
``anchors x (num_classes + 1)`` class logits (index 0 = background, softmax over the row) and, in a second branch,
to ``anchors x 4`` box deltas. Outputs are flattened in (map, y, x, anchor) order, the order of
``tasks.detection.anchors.DefaultBoxGenerator``.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from backbones.layers import normal_init, resolve_activation, resolve_norm
from .registry import HEADS


class SeparablePredictor(nn.Module):
    """3x3 depthwise conv + norm + activation, then a 1x1 conv with bias (no norm) to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, norm_layer=nn.BatchNorm2d,
                 act_layer=nn.ReLU6) -> None:
        super().__init__()
        self.depthwise = Conv2dNormActivation(in_channels, in_channels, kernel_size, groups=in_channels,
                                              norm_layer=norm_layer, activation_layer=act_layer)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _flatten(x: torch.Tensor, columns: int) -> torch.Tensor:
    """(B, A*C, H, W) -> (B, H*W*A, C)."""
    b, _, h, w = x.shape
    return x.view(b, -1, columns, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, columns)


@HEADS.register_module()
class SSDLiteHead(nn.Module):
    """Class logits ``(B, N, num_classes + 1)`` and box deltas ``(B, N, 4)`` for ``N`` default boxes.

    ``num_anchors`` is one count per map or a single count for all maps (6 on every map in torchvision's SSDLite;
    ``[3, 6, 6, 6, 6, 6]`` in the TF SSDLite-MobileNetV2 model, ``DefaultBoxGenerator.num_anchors`` gives it).
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, num_anchors: Union[int, Sequence[int]] = 6,
                 kernel_size: int = 3, norm_layer='bn', act_layer='relu6') -> None:
        super().__init__()
        in_channels = list(in_channels)
        if not in_channels:
            raise ValueError('SSDLiteHead expects at least one feature map (in_channels=[] given)')
        anchors = [num_anchors] * len(in_channels) if isinstance(num_anchors, int) else list(num_anchors)
        if len(anchors) != len(in_channels):
            raise ValueError(f'SSDLiteHead got {len(in_channels)} maps but {len(anchors)} anchor counts; expected '
                             f'one count per map or a single int')
        if num_classes < 1:
            raise ValueError(f'num_classes (foreground classes) must be >= 1, got {num_classes}')
        norm = resolve_norm(norm_layer) or nn.BatchNorm2d
        act = resolve_activation(act_layer) or nn.ReLU6
        self.num_classes, self.num_anchors, self.in_channels = num_classes, anchors, in_channels
        self.cls_preds = nn.ModuleList(SeparablePredictor(c, a * (num_classes + 1), kernel_size, norm, act)
                                       for c, a in zip(in_channels, anchors))
        self.reg_preds = nn.ModuleList(SeparablePredictor(c, a * 4, kernel_size, norm, act)
                                       for c, a in zip(in_channels, anchors))
        self.out_channels = [num_classes + 1, 4]
        normal_init(self)

    def forward(self, features: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        if len(features) != len(self.cls_preds):
            raise ValueError(f'SSDLiteHead was built for {len(self.cls_preds)} maps, got {len(features)}')
        logits: List[torch.Tensor] = []
        deltas: List[torch.Tensor] = []
        for x, cls_pred, reg_pred in zip(features, self.cls_preds, self.reg_preds):
            logits.append(_flatten(cls_pred(x), self.num_classes + 1))
            deltas.append(_flatten(reg_pred(x), 4))
        return torch.cat(logits, 1), torch.cat(deltas, 1)
