"""The encoder of the reversible 3D U-Net (Pendse et al., section 2): at each resolution level a stage of reversible
MBConv couplings; levels are joined by ordinary strided convolutions (down-sampling is not reversible).

Level 0 works at the input resolution, level ``i`` at stride ``2**i``. Only one activation per level is kept for
the backward pass (the stage's output, which the decoder needs as a skip connection anyway), so the training memory
of a stage does not grow with its depth (section 2.2 and Fig. 1 of the paper). The default widths and depths are
ours (small enough for a CPU); the paper's networks are configured in ``configs/unet3d_*.py``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
from torch import nn
from torchvision.ops.misc import Conv3dNormActivation

from .layers import resolve_activation
from .layers3d import MBConv3d, resolve_norm3d
from .registry import BACKBONES
from .reversible import HasReversibleStages, ReversibleBlock, ReversibleSequence


def reversible_mbconv_stage(channels: int, depth: int, expand_ratio: float = 4.0, kernel_size: int = 3,
                            use_se: bool = False, norm_layer='gn', act_layer='relu6',
                            drop_path: Union[float, Sequence[float]] = 0.0, reversible: bool = True,
                            free_input: bool = True) -> ReversibleSequence:
    """``depth`` reversible couplings whose F and G are MBConv blocks on ``channels // 2`` channels each."""
    if channels % 2:
        raise ValueError(f'a reversible stage needs an even channel count, got {channels}')
    rates = [drop_path] * depth if isinstance(drop_path, (int, float)) else list(drop_path)
    if len(rates) != depth:
        raise ValueError(f'expected {depth} drop-path rates, got {len(rates)}')
    half = channels // 2

    def mbconv(rate: float) -> MBConv3d:
        return MBConv3d(half, half, expand_ratio, kernel_size, use_se=use_se, norm_layer=norm_layer,
                        act_layer=act_layer, drop_path=rate, residual=False)

    blocks = [ReversibleBlock(mbconv(r), mbconv(r)) for r in rates]
    return ReversibleSequence(blocks, reversible=reversible, free_input=free_input)


@BACKBONES.register_module()
class ReversibleUNet3dEncoder(HasReversibleStages, nn.Module):
    """Stem conv -> [reversible stage] -> (strided conv -> [reversible stage]) x (levels - 1).

    Args:
        in_channels: input modalities (4 for BraTS: T1, T1ce, T2, FLAIR).
        channels: width of each level (even numbers; each coupling half has ``channels[i] // 2``).
        depths: reversible couplings per level (0 gives a plain level: just the down-sampling conv).
        expand_ratio: MBConv expansion of the hidden width (MobileNetV2 t).
        use_se: squeeze-excitation in the MBConv blocks.
        norm_layer / act_layer: ``'gn'`` (default), ``'in'`` or ``'bn'``; activation name.
        drop_path: maximum stochastic-depth rate, increased linearly over the blocks.
        reversible: run the stages as reversible Functions (memory-saving) or as plain autograd.
        out_indices: which levels to return (default: all), by increasing stride.
    """

    def __init__(self, in_channels: int = 4, channels: Sequence[int] = (16, 32, 64, 128),
                 depths: Sequence[int] = (1, 1, 2, 2), expand_ratio: float = 4.0, kernel_size: int = 3,
                 use_se: bool = False, norm_layer='gn', act_layer='relu6', drop_path: float = 0.0,
                 reversible: bool = True, out_indices: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        if len(channels) != len(depths) or not channels:
            raise ValueError(f'channels {list(channels)} and depths {list(depths)} must be non-empty and of one '
                             f'length (one entry per level)')
        bad = [c for c in channels if c % 2 or c <= 0]
        if bad:
            raise ValueError(f'level widths must be positive and even (couplings split channels), got {bad}')
        norm, act = resolve_norm3d(norm_layer), resolve_activation(act_layer)
        total = max(1, sum(depths))
        rates = [drop_path * i / max(1, total - 1) for i in range(total)]
        self.stem = Conv3dNormActivation(in_channels, channels[0], 3, norm_layer=norm, activation_layer=act)
        self.downs = nn.ModuleList()
        self.stages = nn.ModuleList()
        start = 0
        for i, (width, depth) in enumerate(zip(channels, depths)):
            self.downs.append(nn.Identity() if i == 0 else
                              Conv3dNormActivation(channels[i - 1], width, 3, stride=2, norm_layer=norm,
                                                   activation_layer=act))
            self.stages.append(reversible_mbconv_stage(width, depth, expand_ratio, kernel_size, use_se, norm_layer,
                                                       act_layer, rates[start:start + depth], reversible))
            start += depth
        levels = len(channels)
        self.out_indices = list(range(levels)) if out_indices is None else list(out_indices)
        if any(not 0 <= i < levels for i in self.out_indices) or self.out_indices != sorted(set(self.out_indices)):
            raise ValueError(f'out_indices must be increasing level indices in [0, {levels}), got {out_indices}')
        self.in_channels = in_channels
        self.out_channels: List[int] = [channels[i] for i in self.out_indices]
        self.strides: List[int] = [2 ** i for i in self.out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f'expected a B x {self.in_channels} x D x H x W volume, got shape {tuple(x.shape)}')
        x = self.stem(x)
        outs = []
        for i, (down, stage) in enumerate(zip(self.downs, self.stages)):
            x = stage(down(x))
            if i in self.out_indices:
                outs.append(x)
            if i == self.out_indices[-1]:
                break
        return outs
