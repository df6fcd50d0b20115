"""Sliding-window inference over whole volumes (the usual BraTS recipe, e.g. nnU-Net, Isensee et al., 2021,
section "Inference"): overlapping patches, each prediction weighted by a Gaussian centred on the patch so that
voxels near patch borders (less context) count less, then normalised by the summed weights.
"""
from __future__ import annotations

import itertools
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm


def gaussian_weight(patch_size: Sequence[int], sigma_scale: float = 0.125) -> torch.Tensor:
    """A ``patch_size`` map: a Gaussian with sigma = ``sigma_scale`` x size per axis, maximum 1, no zeros."""
    axes = []
    for n in patch_size:
        x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        sigma = max(sigma_scale * n, 1e-3)
        axes.append(torch.exp(-x ** 2 / (2 * sigma ** 2)))
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    weight = weight / weight.max()
    return weight.clamp_min(float(weight[weight > 0].min())).float()


def window_starts(size: int, patch: int, overlap: float) -> List[int]:
    """Start positions covering ``[0, size)`` with windows of ``patch`` overlapping by at least ``overlap``."""
    if size <= patch:
        return [0]
    step = max(1, int(round(patch * (1 - overlap))))
    count = int(np.ceil((size - patch) / step)) + 1
    return sorted(set(np.linspace(0, size - patch, count).round().astype(int).tolist()))


def sliding_window_inference(inputs: torch.Tensor, predictor: Callable[[torch.Tensor], torch.Tensor],
                             patch_size: Sequence[int], overlap: float = 0.5, gaussian: bool = True,
                             sigma_scale: float = 0.125, sw_batch_size: int = 1, progress: bool = True,
                             desc: str = 'sliding window') -> torch.Tensor:
    """``predictor`` applied to overlapping ``patch_size`` windows of ``inputs`` (``B x C x D x H x W``); returns
    the weighted average of its outputs (``B x K x D x H x W``) at the input's size.

    Volumes smaller than the patch are zero-padded at the end and the output cropped back.
    """
    if inputs.dim() != 5:
        raise ValueError(f'expected a B x C x D x H x W tensor, got shape {tuple(inputs.shape)}')
    if not 0 <= overlap < 1:
        raise ValueError(f'overlap must be in [0, 1), got {overlap}')
    patch = tuple(int(p) for p in patch_size)
    size = tuple(inputs.shape[2:])
    pads = [max(0, p - s) for p, s in zip(patch, size)]
    if any(pads):
        inputs = F.pad(inputs, (0, pads[2], 0, pads[1], 0, pads[0]))
    padded = tuple(inputs.shape[2:])
    starts = list(itertools.product(*[window_starts(n, p, overlap) for n, p in zip(padded, patch)]))
    weight = (gaussian_weight(patch, sigma_scale) if gaussian else torch.ones(patch)).to(inputs.device)
    output = None
    norm = torch.zeros((1, 1) + padded, device=inputs.device)
    batch = inputs.shape[0]
    bar = tqdm(total=len(starts) * batch, desc=desc, unit='patch', disable=not progress, leave=False)
    try:
        for b in range(batch):
            for i in range(0, len(starts), sw_batch_size):
                chunk: List[Tuple[int, int, int]] = starts[i:i + sw_batch_size]
                slices = [tuple(slice(s, s + p) for s, p in zip(start, patch)) for start in chunk]
                windows = torch.cat([inputs[b:b + 1, :, sl[0], sl[1], sl[2]] for sl in slices])
                preds = predictor(windows)
                if output is None:
                    output = torch.zeros((batch, preds.shape[1]) + padded, device=inputs.device, dtype=preds.dtype)
                for pred, sl in zip(preds, slices):
                    output[b, :, sl[0], sl[1], sl[2]] += pred * weight
                    if b == 0:
                        norm[0, 0, sl[0], sl[1], sl[2]] += weight
                bar.update(len(chunk))
    finally:
        bar.close()
    output = output / norm
    return output[:, :, :size[0], :size[1], :size[2]]
