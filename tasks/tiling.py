"""Bounded-memory inference on large images: exact tiling for fully convolutional networks, resolution caps.

A network made of 'same'-padded convolutions, point-wise layers and sub-pixel shuffles computes each output pixel
from a window of input pixels (its receptive field). Cutting the input into tiles, each read with a margin of the
receptive field's half-width on every side (clamped at the image border, where the network's own zero padding
applies as it does on the whole image), and keeping only each tile's interior gives the same output as the whole
image (up to floating-point summation order), with memory bounded by the tile size.

``receptive_field`` derives the margin from the layers themselves (ESPCN: 5x5, 3x3, 3x3 convolutions -> 2 + 1 + 1
= 4 low-resolution pixels); ``iter_tiles``/``tiled_apply`` do the cutting; ``bicubic_upscale_region`` gives a tile
of PIL's bicubic up-scaling equal to the same region of the whole up-scaled image; ``fit_max_pixels`` and
``upsample_argmax`` bound the resolution and the class-probability maps of dense predictors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

#: dense predictors (segmentation, depth) scale larger images down to this many pixels by default: a 2048 x 1024
#: Cityscapes frame, the largest input our recipes train or evaluate on
DEFAULT_MAX_PIXELS = 2048 * 1024

#: half-width (input pixels) of the bicubic kernel (Keys, a = -0.5, support 2) when up-scaling
BICUBIC_SUPPORT = 2

_POINTWISE = (nn.Tanh, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU,
              nn.SiLU, nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Mish, nn.Softplus, nn.Identity,
              nn.Dropout, nn.Dropout2d, nn.modules.batchnorm._BatchNorm, nn.GroupNorm)


@dataclass(frozen=True)
class ReceptiveField:
    """What tiling a network needs: ``margin`` input pixels of context on each side, tile origins on multiples
    of ``stride`` (the network's total down-sampling) and ``scale`` output pixels per input pixel."""
    margin: int
    stride: int
    scale: Fraction


def _pair(value) -> Tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def receptive_field(*modules: nn.Module) -> ReceptiveField:
    """The receptive field of ``modules`` applied one after the other, from their leaf layers in order.

    Each convolution of kernel ``k``, dilation ``d`` and stride ``s`` adds ``d (k - 1) / 2`` of its input pixels to
    the half-width and multiplies the pixel size by ``s``; ``PixelShuffle(r)`` divides it by ``r``. Point-wise layers
    (activations, normalisation, dropout) add nothing. Any other layer (pooling, interpolation, attention) raises
    ``ValueError``: its receptive field is not known here. Branching networks are counted as if their layers were
    in sequence, which over-estimates the margin (still exact, just more overlap).
    """
    margin, pixel, stride = Fraction(0), Fraction(1), Fraction(1)
    for module in modules:
        for name, layer in module.named_modules():
            if next(layer.children(), None) is not None:  # containers: their leaves are visited
                continue
            if isinstance(layer, nn.Conv2d):
                k, d, s, p = (_pair(getattr(layer, a)) for a in ('kernel_size', 'dilation', 'stride', 'padding'))
                if k[0] != k[1] or d[0] != d[1] or s[0] != s[1]:
                    raise ValueError(f'layer {name}: non-square convolutions are not supported by tiling')
                half = d[0] * (k[0] - 1)
                if half % 2 or p != (half // 2, half // 2):
                    raise ValueError(f'layer {name}: tiling needs "same" padding (d(k-1)/2 = {half / 2}), got {p}')
                margin += Fraction(half, 2) * pixel
                pixel *= s[0]
                stride = max(stride, pixel)
            elif isinstance(layer, nn.PixelShuffle):
                pixel /= layer.upscale_factor
            elif isinstance(layer, nn.PixelUnshuffle):
                pixel *= layer.downscale_factor
                stride = max(stride, pixel)
            elif not isinstance(layer, _POINTWISE):
                raise ValueError(f'layer {name} ({type(layer).__name__}): receptive field unknown; give the tiling '
                                 'margin explicitly')
    if stride.denominator != 1:
        raise ValueError(f'the network down-samples by a non-integer factor {stride}; cannot align tiles')
    return ReceptiveField(margin=math.ceil(margin), stride=int(stride), scale=1 / pixel)


@dataclass(frozen=True)
class Tile:
    """One tile: it produces input region ``[y0, y1) x [x0, x1)`` and reads it with ``top``/``left``/``bottom``/
    ``right`` pixels of context (fewer at the image border)."""
    y0: int
    y1: int
    x0: int
    x1: int
    top: int
    left: int
    bottom: int
    right: int

    def source(self) -> Tuple[slice, slice]:
        """Rows and columns of the input to feed the network."""
        return slice(self.y0 - self.top, self.y1 + self.bottom), slice(self.x0 - self.left, self.x1 + self.right)

    def interior(self, scale: int = 1) -> Tuple[slice, slice]:
        """Rows and columns of the tile's output to keep."""
        return (slice(self.top * scale, (self.top + self.y1 - self.y0) * scale),
                slice(self.left * scale, (self.left + self.x1 - self.x0) * scale))

    def target(self, scale: int = 1) -> Tuple[slice, slice]:
        """Where the kept part goes in the whole output."""
        return slice(self.y0 * scale, self.y1 * scale), slice(self.x0 * scale, self.x1 * scale)


def iter_tiles(height: int, width: int, tile: int, margin: int, align: int = 1) -> Iterator[Tile]:
    """Tiles of at most ``tile`` x ``tile`` pixels (a multiple of ``align``) covering ``height`` x ``width`` in row
    order, each with ``margin`` pixels of context clamped to the image; margins are rounded up to ``align``."""
    if tile < 1 or margin < 0 or align < 1:
        raise ValueError(f'need tile >= 1, margin >= 0, align >= 1; got {tile}, {margin}, {align}')
    step = max(align, tile // align * align)
    margin = -(-margin // align) * align
    for y0 in range(0, height, step):
        y1 = min(y0 + step, height)
        for x0 in range(0, width, step):
            x1 = min(x0 + step, width)
            yield Tile(y0, y1, x0, x1, top=min(margin, y0), left=min(margin, x0),
                       bottom=min(margin, height - y1), right=min(margin, width - x1))


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, tile: int,
                field: ReceptiveField) -> torch.Tensor:
    """``fn(inputs)`` computed tile by tile (``B x C x H x W`` in, ``B x C' x sH x sW`` out for an integer scale
    ``s``): the whole output is allocated once, the network only ever sees a tile plus its margins."""
    if field.scale.denominator != 1:
        raise ValueError(f'tiled_apply needs an integer output scale, got {field.scale}')
    scale = int(field.scale)
    height, width = inputs.shape[-2:]
    output: Optional[torch.Tensor] = None
    for t in iter_tiles(height, width, tile, field.margin, field.stride):
        rows, cols = t.source()
        out = fn(inputs[..., rows, cols])
        if output is None:
            output = out.new_empty(out.shape[:-2] + (height * scale, width * scale))
        irows, icols = t.interior(scale)
        trows, tcols = t.target(scale)
        output[..., trows, tcols] = out[..., irows, icols]
    return output


def bicubic_upscale_region(image: np.ndarray, tile: Tile, scale: int) -> np.ndarray:
    """Region ``tile`` (its ``y0..x1``) of ``image`` (HxW[xC] uint8) up-scaled ``scale`` times with PIL's bicubic,
    equal to the same region of the whole image up-scaled (PIL reads the pixels around the box, within the kernel's
    support, from the crop we hand it)."""
    h, w = image.shape[:2]
    cy0, cx0 = max(0, tile.y0 - BICUBIC_SUPPORT), max(0, tile.x0 - BICUBIC_SUPPORT)
    cy1, cx1 = min(h, tile.y1 + BICUBIC_SUPPORT), min(w, tile.x1 + BICUBIC_SUPPORT)
    crop = Image.fromarray(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]))
    box = (tile.x0 - cx0, tile.y0 - cy0, tile.x1 - cx0, tile.y1 - cy0)
    size = ((tile.x1 - tile.x0) * scale, (tile.y1 - tile.y0) * scale)
    return np.asarray(crop.resize(size, Image.BICUBIC, box=box))


def fit_max_pixels(height: int, width: int, max_pixels: Optional[int]) -> Tuple[int, int]:
    """The size with the same aspect ratio and at most ``max_pixels`` pixels (unchanged if already within)."""
    if not max_pixels or height * width <= max_pixels:
        return height, width
    factor = math.sqrt(max_pixels / (height * width))
    new_h, new_w = max(1, int(height * factor)), max(1, int(width * factor))
    return new_h, new_w


def downscale_to_max_pixels(inputs: torch.Tensor, max_pixels: Optional[int]) -> torch.Tensor:
    """``B x C x H x W`` resized (bilinear, anti-aliased) to at most ``max_pixels`` pixels, or returned as is."""
    size = fit_max_pixels(inputs.shape[-2], inputs.shape[-1], max_pixels)
    if size == tuple(inputs.shape[-2:]):
        return inputs
    return F.interpolate(inputs, size=size, mode='bilinear', align_corners=False, antialias=True)


def _bilinear_grid(rows: torch.Tensor, cols: torch.Tensor, out_size: Sequence[int],
                   align_corners: bool) -> torch.Tensor:
    """``grid_sample`` coordinates of output pixels ``rows`` x ``cols`` of an image of ``out_size``, so that
    sampling equals ``F.interpolate(size=out_size)``: pixel ``i`` of ``n`` maps to ``2 (i + 0.5) / n - 1``, or to
    ``2 i / (n - 1) - 1`` with ``align_corners``."""
    def axis(index: torch.Tensor, n: int) -> torch.Tensor:
        index = index.double()
        if align_corners:
            return index * 2 / (n - 1) - 1 if n > 1 else index * 0 - 1
        return (index + 0.5) * 2 / n - 1
    gy, gx = axis(rows, out_size[0]), axis(cols, out_size[1])
    grid = torch.stack(torch.meshgrid(gy, gx, indexing='ij')[::-1], dim=-1)
    return grid.float()[None]


def upsample_argmax(scores: torch.Tensor, out_size: Sequence[int], align_corners: bool = False,
                    max_elements: int = 1 << 23) -> torch.Tensor:
    """``argmax`` over classes of ``scores`` (``K x h x w``) bilinearly resized to ``out_size`` (as
    ``F.interpolate``); returns ``H x W`` int64 on the scores' device.

    When the resized ``K x H x W`` map would exceed ``max_elements`` (32 MiB of float32) it is never allocated:
    bands of output rows are sampled with ``F.grid_sample`` (same values to ~1e-6) and reduced one at a time.
    """
    height, width = int(out_size[0]), int(out_size[1])
    classes = scores.shape[0]
    if tuple(scores.shape[-2:]) == (height, width):
        return scores.argmax(0)
    if classes * height * width <= max_elements:
        resized = F.interpolate(scores[None], size=(height, width), mode='bilinear', align_corners=align_corners)
        return resized[0].argmax(0)
    band_rows = max(1, max_elements // (classes * width))
    labels = torch.empty((height, width), dtype=torch.long, device=scores.device)
    cols = torch.arange(width, device=scores.device)
    for y0 in range(0, height, band_rows):
        rows = torch.arange(y0, min(y0 + band_rows, height), device=scores.device)
        grid = _bilinear_grid(rows, cols, (height, width), align_corners)
        band = F.grid_sample(scores[None].float(), grid, mode='bilinear', padding_mode='border',
                             align_corners=align_corners)
        labels[y0:y0 + len(rows)] = band[0].argmax(0)
    return labels


def set_max_pixels(model: nn.Module, max_pixels: Optional[int]) -> None:
    """Change a built model's ``test_cfg['max_pixels']`` (``None`` = no limit), in the model and in its data
    preprocessor where that scales images too (``SegDataPreprocessor``); e.g. from a ``--max-pixels`` flag."""
    if not hasattr(model, 'max_pixels'):
        raise ValueError(f'{type(model).__name__} has no max_pixels setting (segmentation and depth models do)')
    if max_pixels is not None and int(max_pixels) < 1:
        raise ValueError(f'max_pixels must be a positive number of pixels or None, got {max_pixels}')
    model.max_pixels = max_pixels
    preprocessor = getattr(model, 'data_preprocessor', None)
    if hasattr(preprocessor, 'max_pixels'):
        preprocessor.max_pixels = max_pixels
