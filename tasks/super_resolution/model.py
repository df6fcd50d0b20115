"""ESPCN super-resolution as a task model (Shi et al., 2016): backbone features + sub-pixel head."""
from __future__ import annotations

from fractions import Fraction
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from backbones import BACKBONES
from data.transforms.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from data.transforms.resize import bicubic_resize
from heads import HEADS
from ..base import ModuleOrCfg, SampleListPreprocessor, TaskModel, build_part, stack_images
from ..registry import TASKS
from ..tiling import ReceptiveField, bicubic_upscale_region, iter_tiles, receptive_field


def _luma(image: np.ndarray, rows: int = 256) -> np.ndarray:
    """BT.601 luma of an RGB image as float32, converted ``rows`` rows at a time (the float64 conversion of a
    whole 4000x3000 photo alone would take 290 MB)."""
    if image.ndim == 2:
        return image.astype(np.float32)
    luma = np.empty(image.shape[:2], np.float32)
    for y0 in range(0, image.shape[0], rows):
        luma[y0:y0 + rows] = rgb_to_y(image[y0:y0 + rows])
    return luma


@TASKS.register_module()
class SRDataPreprocessor(SampleListPreprocessor):
    """LR images -> ``B x C x H x W`` float in [0, 1]: the BT.601 luma (``color='y'``, the paper) or RGB.

    In training the HR targets are attached to the samples as ``target`` tensors in the same colour space.
    """

    def __init__(self, color: str = 'y') -> None:
        super().__init__()
        if color not in ('y', 'rgb'):
            raise ValueError(f"color must be 'y' or 'rgb', got {color!r}")
        self.color = color

    def to_model_space(self, images: List[np.ndarray], what: str) -> torch.Tensor:
        if self.color == 'y':
            images = [_luma(im) for im in images]
        batch = stack_images(images, what).float() / 255.0
        return batch.to(self.device)

    def process(self, samples: List[dict], training: bool) -> dict:
        inputs = self.to_model_space([s['img'] for s in samples], 'LR images')
        if 'gt_hr' in samples[0]:
            targets = self.to_model_space([s['gt_hr'] for s in samples], 'HR images')
            samples = [dict(s, target=t) for s, t in zip(samples, targets)]
        return dict(inputs=inputs, data_samples=samples)


@TASKS.register_module()
class SuperResolver(TaskModel):
    """Sub-pixel CNN super-resolution: ``tensor`` mode gives the ``r``-times larger output in [0, 1].

    With ``color='y'`` the network sees and predicts luma only; the colour of the output picture comes from the
    bicubic up-scaled chroma (section 3.1 of the paper evaluates on luma).

    ``predict`` runs the network tile by tile (``test_cfg=dict(tile=256)`` low-resolution pixels a side; ``0`` =
    the whole image at once), each tile read with a margin of the network's receptive field (``margin=None``:
    computed from the layers, 4 pixels for ESPCN), so the output equals the whole-image output while memory stays
    bounded; the chroma up-scaling and colour conversion run on the same tiles. The float luma ``y`` (what PSNR is
    scored on) comes with outputs of at most ``luma_max_pixels`` (default 2^25, 128 MB of float32); a larger
    output (a 12000 x 9000 photo: 432 MB) carries only its uint8 ``image``.
    """

    def __init__(self, backbone: ModuleOrCfg, head: ModuleOrCfg, scale: int, color: str = 'y',
                 loss: str = 'mse', data_preprocessor: ModuleOrCfg = None, init_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='SRDataPreprocessor', color=color)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        channels = 1 if color == 'y' else 3
        self.backbone = build_part(backbone, BACKBONES, in_channels=channels)
        self.head = build_part(head, HEADS, in_channels=self.backbone.out_channels, scale=scale,
                               out_channels=channels)
        if getattr(self.head, 'scale', scale) != scale:
            raise ValueError(f'head scale {self.head.scale} differs from the model scale {scale}')
        if loss not in ('mse', 'l1'):
            raise ValueError(f"loss must be 'mse' (the paper) or 'l1', got {loss!r}")
        self.scale, self.color, self.loss_type = scale, color, loss
        test_cfg = dict(test_cfg or {})
        self.tile = int(test_cfg.pop('tile', 256) or 0)
        self.margin = test_cfg.pop('margin', None)
        self.luma_max_pixels = int(test_cfg.pop('luma_max_pixels', 1 << 25))
        if test_cfg:
            raise ValueError(f'unknown test_cfg keys {sorted(test_cfg)}; expected tile, margin, luma_max_pixels')
        if self.tile < 0 or (self.margin is not None and int(self.margin) < 0):
            raise ValueError(f'test_cfg tile and margin must be >= 0, got {self.tile} and {self.margin}')

    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(inputs))

    def loss(self, inputs: torch.Tensor, data_samples: List[dict]) -> Dict[str, torch.Tensor]:
        target = torch.stack([s['target'] for s in data_samples])
        output = self._forward(inputs)
        if output.shape != target.shape:
            raise ValueError(f'SR output {tuple(output.shape)} and target {tuple(target.shape)} differ; HR patches '
                             f'must be exactly {self.scale}x the LR patches')
        fn = F.mse_loss if self.loss_type == 'mse' else F.l1_loss
        return {f'loss_{self.loss_type}': fn(output, target)}

    def receptive_field(self) -> ReceptiveField:
        """Context the tiles need: from ``test_cfg['margin']`` if given, else from the layers (``tasks.tiling``)."""
        field = receptive_field(self.backbone, self.head)
        if field.scale != self.scale:
            raise ValueError(f'the layers up-scale by {field.scale}, the model says x{self.scale}')
        if self.margin is not None:
            field = ReceptiveField(int(self.margin), field.stride, field.scale)
        return field

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples: List[dict]) -> List[dict]:
        """Per image: ``image`` (HR RGB uint8) and, on luma, ``y`` (the network's float32 luma on [0, 255]) when
        the output has at most ``luma_max_pixels`` pixels."""
        tile = self.tile or max(inputs.shape[-2:])
        try:
            field = self.receptive_field()
        except ValueError as err:
            if self.tile:
                raise ValueError(f'{err}; set test_cfg margin, or tile=0 for whole-image inference') from err
            field = ReceptiveField(0, 1, Fraction(self.scale))
        return [self._predict_one(x[None], sample['img'], tile, field) for x, sample in zip(inputs, data_samples)]

    def _predict_one(self, inputs: torch.Tensor, lr: np.ndarray, tile: int, field: ReceptiveField) -> dict:
        r = self.scale
        height, width = inputs.shape[-2:]
        image = np.empty((height * r, width * r, 3), np.uint8)
        keep_luma = self.color == 'y' and height * width * r * r <= self.luma_max_pixels
        luma = np.empty((height * r, width * r), np.float32) if keep_luma else None
        for t in iter_tiles(height, width, tile, field.margin, field.stride):
            rows, cols = t.source()
            inner_rows, inner_cols = t.interior(r)
            out = self._forward(inputs[..., rows, cols])[0, :, inner_rows, inner_cols].clamp(0, 1) * 255.0
            out = out.cpu().numpy()
            target = t.target(r)
            if self.color != 'y':
                image[target] = np.clip(np.round(out.transpose(1, 2, 0)), 0, 255).astype(np.uint8)
                continue
            if luma is not None:
                luma[target] = out[0]
            bicubic = bicubic_upscale_region(lr, t, r)
            rows_out, cols_out = target
            for y in range(0, out.shape[1], 64):  # float64 colour in 64-row pieces: a few MB, not 70
                ycbcr = rgb_to_ycbcr(bicubic[y:y + 64])
                ycbcr[..., 0] = out[0, y:y + 64]
                piece = np.clip(np.round(ycbcr_to_rgb(ycbcr)), 0, 255).astype(np.uint8)
                image[rows_out.start + y:rows_out.start + y + len(piece), cols_out] = piece
        return dict(image=image) if luma is None else dict(image=image, y=luma)

    def save_result(self, result: dict, stem: str) -> List[str]:
        """``<dir>/raw/<name>.png`` for ``stem = <dir>/<name>``: the super-resolved image itself (lossless PNG), in
        its own folder under the input's name, so ``tools/evaluate.py --metric psnr --pred-dir <dir>/raw`` matches
        it with the HR image of the same stem (the picture of ``visualize`` is the side-by-side comparison)."""
        import os
        from data.io import write_rgb
        folder, name = os.path.split(os.fspath(stem))
        path = os.path.join(folder, 'raw', name + '.png')
        write_rgb(path, result['image'])
        return [path]

    def visualize(self, image: np.ndarray, result: dict) -> np.ndarray:
        """Bicubic (left) and ESPCN (right) side by side, labelled: a preview, each panel at most
        ``PREVIEW_MAX_SIDE`` (2048) pixels a side (the SR image area-averaged down, the bicubic up-scaling made at
        that size), so a 12000 x 9000 output costs no full-size copies; ``save_result`` writes the image itself."""
        from data.visualization.panels import fit_preview, label_panels
        sr = fit_preview(result['image'])
        label = f'ESPCN x{self.scale}'
        if sr is not result['image']:
            height, width = result['image'].shape[:2]
            label += f' (preview of {width}x{height})'
        bicubic = bicubic_resize(image, sr.shape[:2])
        return label_panels([bicubic, sr], ['bicubic', label])
