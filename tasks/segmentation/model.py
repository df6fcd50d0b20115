"""Semantic segmentation task model: backbone (+ ASPP neck) + per-pixel head, bilinear up-sampling to the input.

Mobile DeepLabv3 (MobileNetV2 paper, section 6.3), torchvision's DeepLabV3/LR-ASPP MobileNetV3-Large
(MobileNetV3 paper, section 6.4) and any other backbone/neck/head combination from the registries.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backbones import BACKBONES
from heads import HEADS
from necks import NECKS
from ..base import ModuleOrCfg, SampleListPreprocessor, TaskModel, build_part
from ..registry import TASKS
from ..tiling import DEFAULT_MAX_PIXELS, downscale_to_max_pixels, fit_max_pixels, upsample_argmax
from .loss import SegCrossEntropy

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _file_of(sample: dict) -> str:
    meta = sample.get('meta', {}) or {}
    return str(meta.get('file') or meta.get('img_id') or '<sample>')


@TASKS.register_module()
class SegDataPreprocessor(SampleListPreprocessor):
    """RGB uint8 images -> normalised float batch, padded bottom/right to one size (a multiple of ``size_divisor``).

    Padding is 0 after normalisation (the mean colour); in training the masks become a ``BxHxW`` int64 ``target``
    tensor padded with ``seg_pad_val`` (255, ignored), attached to each sample as ``seg_target``.

    Outside training, an image over ``max_pixels`` (set from the ``Segmentor``'s ``test_cfg``) is scaled down
    (bilinear, anti-aliased, on uint8) before it becomes float, and its sample's ``img`` is the scaled image
    (``meta['ori_shape']`` keeps the original size, where ``predict`` puts the labels).
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 size_divisor: int = 1, seg_pad_val: int = 255, max_pixels: Optional[int] = None) -> None:
        super().__init__()
        if size_divisor < 1:
            raise ValueError(f'size_divisor must be >= 1, got {size_divisor}')
        self.size_divisor, self.seg_pad_val, self.max_pixels = size_divisor, seg_pad_val, max_pixels
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def _padded_size(self, shapes: List[Tuple[int, int]]) -> Tuple[int, int]:
        d = self.size_divisor
        h, w = max(s[0] for s in shapes), max(s[1] for s in shapes)
        return (h + d - 1) // d * d, (w + d - 1) // d * d

    def _fit_max_pixels(self, sample: dict) -> dict:
        """``sample`` with its image scaled down to at most ``max_pixels`` pixels (unchanged if within)."""
        h, w = sample['img'].shape[:2]
        size = fit_max_pixels(h, w, self.max_pixels)
        if size == (h, w):
            return sample
        image = torch.from_numpy(np.ascontiguousarray(sample['img'])).permute(2, 0, 1)[None]
        small = F.interpolate(image, size=size, mode='bilinear', align_corners=False, antialias=True)
        meta = dict(sample.get('meta') or {})
        meta.setdefault('ori_shape', (h, w))
        return dict(sample, img=small[0].permute(1, 2, 0).numpy(), meta=meta)

    def process(self, samples: List[dict], training: bool) -> dict:
        for s in samples:
            img = s['img']
            if not (isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3):
                raise ValueError(f'{_file_of(s)}: expected an HxWx3 RGB image, got {getattr(img, "shape", img)}')
        if not training and self.max_pixels:
            samples = [self._fit_max_pixels(s) for s in samples]
        shapes = [tuple(s['img'].shape[:2]) for s in samples]
        height, width = self._padded_size(shapes)
        device = self.mean.device
        batch = torch.zeros(len(samples), 3, height, width, device=device)
        for i, s in enumerate(samples):  # normalised in place: no full-size float temporaries
            h, w = shapes[i]
            image = torch.from_numpy(np.ascontiguousarray(s['img'])).permute(2, 0, 1)
            batch[i, :, :h, :w].copy_(image).sub_(self.mean[0]).div_(self.std[0])
        if 'gt_seg' in samples[0] and training:
            targets = torch.full((len(samples), height, width), self.seg_pad_val, dtype=torch.long, device=device)
            for i, s in enumerate(samples):
                seg = np.asarray(s['gt_seg'])
                if seg.shape != shapes[i]:
                    raise ValueError(f'{_file_of(s)}: mask size {seg.shape} differs from image size {shapes[i]}')
                targets[i, :shapes[i][0], :shapes[i][1]] = torch.from_numpy(seg.astype(np.int64)).to(device)
            samples = [dict(s, seg_target=t) for s, t in zip(samples, targets)]
        return dict(inputs=batch, data_samples=samples)


@TASKS.register_module()
class Segmentor(TaskModel):
    """Backbone -> [neck] -> head -> bilinear up-sampling to the input size; optional auxiliary head.

    Args:
        backbone, neck, head, aux_head: modules or registry configs (``in_channels`` and ``num_classes`` are
            filled in). The head sees the neck's outputs (or the backbone's); the auxiliary head always sees the
            backbone's features.
        num_classes: number of classes (21 for VOC, 19 for Cityscapes).
        trim_backbone: drop backbone layers after the deepest one used (Mobile DeepLabv3 never runs the 1280-wide
            last conv of MobileNetV2, so it is not counted in the parameters).
        loss: ``SegCrossEntropy`` options (``ignore_index``, ``class_weight``, ``ohem_thresh``, ``ohem_min_kept``).
        aux_weight: weight of the auxiliary loss; 0.5 by default, torchvision's reference (``train.py``:
            ``losses['out'] + 0.5 * losses['aux']``), the recipe of our MobileNetV3 configs (PSPNet/mmseg use 0.4).
        test_cfg: ``scales`` (multi-scale testing, factors of the input size) and ``flip`` (average with the
            horizontally flipped input); probabilities are averaged. ``max_pixels`` (default 2048 x 1024, a
            Cityscapes frame, the largest input of our recipes; ``None`` = no limit): a larger image is scaled
            down to that many pixels (anti-aliased bilinear; by ``SegDataPreprocessor`` while still uint8, else
            here on the float input), segmented, and its class probabilities are resized back to
            the original size and reduced to labels in bands of rows, so memory stays bounded on any photo.
            Down-scaling rather than sliding windows: the networks are trained on whole images at that scale
            (VOC ~500 px, Cityscapes full frames), so a 48-megapixel photo at full resolution shows objects far
            larger than any seen in training, and windows would not see them whole.
        class_names, palette: for ``visualize`` (default: VOC names when ``num_classes == 21``).
    """

    def __init__(self, backbone: ModuleOrCfg, head: ModuleOrCfg, num_classes: int = 21, neck: ModuleOrCfg = None,
                 aux_head: ModuleOrCfg = None,
                 trim_backbone: bool = True, loss: Optional[dict] = None, aux_weight: float = 0.5,
                 test_cfg: Optional[dict] = None, class_names: Optional[Sequence[str]] = None,
                 palette: Optional[Sequence[Sequence[int]]] = None, align_corners: bool = False,
                 data_preprocessor: ModuleOrCfg = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='SegDataPreprocessor'), init_cfg=init_cfg)
        if num_classes < 2:
            raise ValueError(f'num_classes must be >= 2, got {num_classes}')
        self.num_classes, self.aux_weight, self.align_corners = num_classes, aux_weight, align_corners
        self.backbone = build_part(backbone, BACKBONES)
        in_channels = list(self.backbone.out_channels)
        if trim_backbone:
            self._trim_backbone()
        self.neck = build_part(neck, NECKS, in_channels=in_channels)
        head_in = self.neck.out_channels if self.neck is not None else in_channels
        self.head = build_part(head, HEADS, in_channels=head_in, num_classes=num_classes)
        self.aux_head = build_part(aux_head, HEADS, in_channels=in_channels, num_classes=num_classes)
        for name, part in (('head', self.head), ('aux_head', self.aux_head)):
            out = getattr(part, 'out_channels', [num_classes]) if part is not None else [num_classes]
            if list(out) != [num_classes]:
                raise ValueError(f'{name} predicts {list(out)} channels, expected [{num_classes}]')
        loss = dict(loss or {})
        self.criterion = SegCrossEntropy(**loss)
        self.ignore_index = self.criterion.ignore_index
        test_cfg = dict(test_cfg or {})
        self.test_scales = tuple(float(s) for s in test_cfg.pop('scales', (1.0,)))
        self.test_flip = bool(test_cfg.pop('flip', False))
        self.max_pixels = test_cfg.pop('max_pixels', DEFAULT_MAX_PIXELS)
        if test_cfg:
            raise ValueError(f'unknown test_cfg keys {sorted(test_cfg)}; expected scales, flip, max_pixels')
        if self.max_pixels is not None and int(self.max_pixels) < 1:
            raise ValueError(f'test_cfg max_pixels must be a positive number of pixels or None, '
                             f'got {self.max_pixels}')
        if isinstance(self.data_preprocessor, SegDataPreprocessor) and self.data_preprocessor.max_pixels is None:
            self.data_preprocessor.max_pixels = self.max_pixels  # scale down before the image becomes float
        self.class_names = list(class_names) if class_names is not None else None
        self.palette = [tuple(int(c) for c in p) for p in palette] if palette is not None else None

    # --- features ---------------------------------------------------------------------------------------------
    def _deepest_layer(self) -> Optional[int]:
        points = getattr(self.backbone, 'feature_points', None)
        if points is None or not hasattr(self.backbone, 'out_indices'):
            return None
        return max(points[i].layer for i in self.backbone.out_indices)

    def _trim_backbone(self) -> None:
        features = getattr(self.backbone, 'features', None)
        last = self._deepest_layer()
        if isinstance(features, nn.Sequential) and last is not None and last + 1 < len(features):
            self.backbone.features = features[:last + 1]  # keeps the layer indices, so state-dict keys stay

    def extract_features(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        return list(self.backbone(inputs))

    # --- forward modes -----------------------------------------------------------------------------------------
    def _upsample(self, logits: torch.Tensor, size) -> torch.Tensor:
        return F.interpolate(logits, size=size, mode='bilinear', align_corners=self.align_corners)

    def _logits(self, inputs: torch.Tensor, with_aux: bool = False):
        features = self.extract_features(inputs)
        fused = self.neck(features) if self.neck is not None else features
        logits = self._upsample(self.head(fused), inputs.shape[-2:])
        if not with_aux or self.aux_head is None:
            return logits, None
        return logits, self._upsample(self.aux_head(features), inputs.shape[-2:])

    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``B x K x H x W`` at the input size (what ``tools/export.py`` exports)."""
        return self._logits(inputs)[0]

    def loss(self, inputs: torch.Tensor, data_samples: List[dict]) -> Dict[str, torch.Tensor]:
        if any('seg_target' not in s for s in data_samples):
            raise ValueError('training samples need `gt_seg` masks (the data preprocessor builds `seg_target`)')
        target = torch.stack([s['seg_target'] for s in data_samples]).to(inputs.device)
        logits, aux = self._logits(inputs, with_aux=True)
        losses = {'loss_ce': self.criterion(logits, target)}
        if aux is not None:
            losses['loss_aux'] = self.aux_weight * self.criterion(aux, target)
        return losses

    @torch.no_grad()
    def inference(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities at the input size, averaged over ``test_cfg`` scales and flips."""
        size = inputs.shape[-2:]
        total = None
        for scale in self.test_scales:
            x = inputs if scale == 1.0 else F.interpolate(inputs, scale_factor=scale, mode='bilinear',
                                                          align_corners=self.align_corners)
            views = [(x, False)] + ([(x.flip(-1), True)] if self.test_flip else [])
            for view, flipped in views:
                prob = self._upsample(self._forward(view), size).softmax(1)
                prob = prob.flip(-1) if flipped else prob
                total = prob if total is None else total.add_(prob)
        views = len(self.test_scales) * (2 if self.test_flip else 1)
        return total if views == 1 else total.div_(views)

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples: List[dict]) -> List[dict]:
        """One ``{'seg': HxW int64}`` per image, at ``meta['ori_shape']`` (padding removed, resizing undone).

        Images over ``test_cfg['max_pixels']`` are segmented one at a time at that many pixels."""
        valid = [tuple(s['img'].shape[:2]) if 'img' in s else tuple(inputs.shape[-2:]) for s in data_samples]
        large = self.max_pixels is not None and any(h * w > self.max_pixels for h, w in valid)
        probs = None if large else self.inference(inputs)
        results = []
        for i, sample in enumerate(data_samples):
            h, w = valid[i]
            if probs is None:
                prob = self.inference(downscale_to_max_pixels(inputs[i:i + 1, :, :h, :w], self.max_pixels))[0]
            else:
                prob = probs[i, :, :h, :w]
            ori = tuple((sample.get('meta') or {}).get('ori_shape') or (h, w))[:2]
            seg = upsample_argmax(prob, ori, align_corners=self.align_corners)
            results.append(dict(seg=seg.cpu().numpy().astype(np.int64, copy=False)))
        return results

    # --- pictures and files ------------------------------------------------------------------------------------
    def _names_and_palette(self):
        from data.visualization.masks import default_class_names, palette_for
        names = self.class_names or default_class_names(self.num_classes)
        palette = self.palette or palette_for(self.num_classes)
        return names, palette

    def visualize(self, image: np.ndarray, result: dict) -> np.ndarray:
        """The image with the class colours blended in and a legend of the classes present."""
        from data.visualization.masks import draw_segmentation
        names, palette = self._names_and_palette()
        return draw_segmentation(image, result['seg'], palette, names, ignore_index=self.ignore_index)

    def save_result(self, result: dict, stem: str) -> List[str]:
        """``<dir>/labels/<name>.png`` for ``stem = <dir>/<name>``: the label map as an 8-bit palette PNG (pixel
        value = class index), in its own folder so the overlay ``<dir>/<name>.png`` is kept and the folder can be
        scored with ``tools/evaluate.py --metric miou --pred-dir <dir>/labels``."""
        from data.visualization.masks import write_label_png
        _, palette = self._names_and_palette()
        folder, name = os.path.split(os.fspath(stem))
        path = os.path.join(folder, 'labels', name + '.png')
        write_label_png(path, result['seg'], palette)
        return [path]
