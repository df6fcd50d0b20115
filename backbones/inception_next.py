"""InceptionNeXt (Yu et al., "InceptionNeXt: When Inception Meets ConvNeXt", CVPR 2024).

MetaNeXt layout (section 3): a 4x4 stride-4 stem (conv + norm), four stages; stages 1-3 start with norm + 2x2
stride-2 convolution. A block is the Inception depthwise token mixer (the channels split into an
identity part and three equal branches of ``branch_ratio`` of them, a 3x3 square, a 1 x k and a k x 1 band
depthwise convolution), BatchNorm, a convolutional MLP (1x1, GELU, 1x1; ratio 4, 3 in the last stage), a layer
scale and the residual. Atto (the paper's model table): widths (40, 80, 160, 320), depths (2, 2, 6, 2), band kernel 9,
branch ratio 0.25. ``output_stride`` 16 or 8 replaces the last strides by dilation (as DeepLab does): the
downsampling convolution keeps stride 1 and the blocks after it are dilated.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from .layers import resolve_norm
from .registry import BACKBONES
from .staged import OutIndices, StagedBackbone

#: arch -> spec; published: ImageNet top-1 and params (M) (the paper's ImageNet table), MACs (G) at 224 (timm's model card)
INCEPTION_NEXT_ARCHS: Dict[str, dict] = {
    'inception_next_atto': dict(dims=(40, 80, 160, 320), depths=(2, 2, 6, 2), band_kernel=9, branch_ratio=0.25,
                                mlp_ratios=(4, 4, 4, 3), top1=75.3, params=4.2, macs=0.5),
}


class InceptionDWConv(nn.Module):
    """Inception depthwise convolution: identity, k x k square, 1 x band and band x 1 branches."""

    def __init__(self, channels: int, square_kernel: int = 3, band_kernel: int = 11, branch_ratio: float = 0.125,
                 dilation: int = 1) -> None:
        super().__init__()
        gc = int(channels * branch_ratio)
        sq, band = dilation * (square_kernel - 1) // 2, dilation * (band_kernel - 1) // 2
        self.square = nn.Conv2d(gc, gc, square_kernel, padding=sq, dilation=dilation, groups=gc)
        self.band_w = nn.Conv2d(gc, gc, (1, band_kernel), padding=(0, band), dilation=(1, dilation), groups=gc)
        self.band_h = nn.Conv2d(gc, gc, (band_kernel, 1), padding=(band, 0), dilation=(dilation, 1), groups=gc)
        self.split = (channels - 3 * gc, gc, gc, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_id, x_hw, x_w, x_h = torch.split(x, self.split, dim=1)
        return torch.cat((x_id, self.square(x_hw), self.band_w(x_w), self.band_h(x_h)), dim=1)


class MetaNeXtBlock(nn.Module):
    """Token mixer -> norm -> 1x1 conv, GELU, 1x1 conv -> layer scale -> + input."""

    def __init__(self, channels: int, mlp_ratio: float, mixer_kwargs: dict, dilation: int = 1,
                 norm_layer=nn.BatchNorm2d, layer_scale: float = 1e-6, drop_path: float = 0.0) -> None:
        super().__init__()
        hidden = int(mlp_ratio * channels)
        self.mixer = InceptionDWConv(channels, dilation=dilation, **mixer_kwargs)
        self.norm = norm_layer(channels)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.GELU(), nn.Conv2d(hidden, channels, 1))
        self.gamma = nn.Parameter(torch.full((channels,), float(layer_scale)))
        self.drop_path = StochasticDepth(drop_path, 'row') if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.norm(self.mixer(x))) * self.gamma.view(1, -1, 1, 1)
        return x + self.drop_path(y)


class Downsample(nn.Module):
    """Norm then a 2x2 convolution: stride 2, or stride 1 with dilation when the stage is dilated.

    A 2x2 kernel at stride 1 needs one row/column of padding, put after the input (bottom/right), as TF's 'SAME';
    with dilation 2 the padding is symmetric.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, dilation: int, norm_layer) -> None:
        super().__init__()
        self.norm = norm_layer(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 2, stride=stride, dilation=dilation,
                              padding=1 if stride == 1 and dilation == 2 else 0)
        self.pad = stride == 1 and dilation == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        if self.pad:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class MetaNeXtStage(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, depth: int, downsample: Optional[Tuple[int, int]],
                 dilation: int, mlp_ratio: float, mixer_kwargs: dict, norm_layer, layer_scale: float,
                 drop_paths: Sequence[float]) -> None:
        super().__init__()
        self.downsample = (Downsample(in_channels, out_channels, *downsample, norm_layer)
                           if downsample is not None else nn.Identity())
        self.blocks = nn.Sequential(*[MetaNeXtBlock(out_channels, mlp_ratio, mixer_kwargs, dilation, norm_layer,
                                                    layer_scale, p) for p in drop_paths[:depth]])
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


@BACKBONES.register_module()
class InceptionNeXt(StagedBackbone):
    """InceptionNeXt-atto. ``features`` = [stem, stage0..stage3].

    Feature points (name: channels/stride at output_stride 32): stem 40/4, stage0 40/4, stage1 80/8, stage2 160/16,
    stage3 320/32. Default ``out_indices`` = stage0..stage3 (timm's ``features_only`` maps).
    """

    def __init__(self, arch: str = 'inception_next_atto', out_indices: OutIndices = None, output_stride: int = 32,
                 frozen_stages: int = -1, norm_eval: bool = False, norm_layer=None, layer_scale: float = 1e-6,
                 drop_path_rate: float = 0.0, in_channels: int = 3, pretrained: Optional[str] = None) -> None:
        super().__init__()
        if arch not in INCEPTION_NEXT_ARCHS:
            raise ValueError(f'arch must be one of {sorted(INCEPTION_NEXT_ARCHS)}, got {arch!r}')
        if output_stride not in (8, 16, 32):
            raise ValueError(f'output_stride must be 8, 16 or 32, got {output_stride}')
        spec = INCEPTION_NEXT_ARCHS[arch]
        self.arch, self.output_stride = arch, output_stride
        self.frozen_stages, self.norm_eval, self.pretrained = frozen_stages, norm_eval, pretrained
        norm = resolve_norm(norm_layer) or nn.BatchNorm2d
        dims, depths = spec['dims'], spec['depths']
        mixer = dict(band_kernel=spec['band_kernel'], branch_ratio=spec['branch_ratio'])
        stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], 4, stride=4), norm(dims[0]))
        stem.out_channels = dims[0]
        layers: List[nn.Module] = [stem]
        points = [('stem', 0, dims[0], 4)]
        strides = [4]
        stride, dilation, channels = 4, 1, dims[0]
        total, done = sum(depths), 0
        for i, depth in enumerate(depths):
            downsample = None
            if i > 0:
                if stride * 2 > output_stride:  # dilate instead of striding (DeepLabv3, section 3.1)
                    downsample = (1, dilation)  # the 2x2 conv sees the previous stage's sampling grid
                    dilation *= 2
                else:
                    downsample = (2, 1)
                    stride *= 2
            rates = [drop_path_rate * (done + j) / max(total - 1, 1) for j in range(depth)]
            done += depth
            layers.append(MetaNeXtStage(channels, dims[i], depth, downsample, dilation, spec['mlp_ratios'][i], mixer,
                                        norm, layer_scale, rates))
            points.append((f'stage{i}', len(layers) - 1, dims[i], stride))
            strides.append(stride)
            channels = dims[i]
        self.features = nn.Sequential(*layers)
        self._finish_staged(points, [1, 2, 3, 4], out_indices, ('stage0', 'stage1', 'stage2', 'stage3'), strides)

    def _reset_parameters(self) -> None:
        """The reference initialisation: truncated normal (std 0.02) convolutions, zero biases, unit norms."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
