"""FastDepth (Wofk et al., 2019) as a task model: encoder features -> NNConv5 decoder -> depth in metres."""
from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from backbones import BACKBONES
from heads import HEADS
from ..base import ModuleOrCfg, SampleListPreprocessor, TaskModel, build_part, stack_images
from ..registry import TASKS
from ..tiling import DEFAULT_MAX_PIXELS, downscale_to_max_pixels
from .losses import DEPTH_LOSSES

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _max_pixels_of(test_cfg: Optional[dict]) -> Optional[int]:
    """``test_cfg['max_pixels']`` checked (the only key ``DepthEstimator`` takes)."""
    test_cfg = dict(test_cfg or {})
    max_pixels = test_cfg.pop('max_pixels', DEFAULT_MAX_PIXELS)
    if test_cfg:
        raise ValueError(f'unknown test_cfg keys {sorted(test_cfg)}; expected max_pixels')
    if max_pixels is not None and int(max_pixels) < 1:
        raise ValueError(f'test_cfg max_pixels must be a positive number of pixels or None, got {max_pixels}')
    return max_pixels


@TASKS.register_module()
class DepthDataPreprocessor(SampleListPreprocessor):
    """RGB uint8 samples -> ``B x 3 x H x W`` float, ``(x - mean) / std`` (default: ImageNet statistics on 0-255;
    FastDepth's paper config uses ``mean=(0, 0, 0), std=(255, 255, 255)``, i.e. ``rgb / 255`` as the official code).

    Samples with ``gt_depth`` get a ``target`` tensor (``1 x H x W`` metres, 0 = invalid) for the loss.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f'mean and std need 3 values (RGB), got {mean} and {std}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), False)

    def process(self, samples: List[dict], training: bool) -> dict:
        images = stack_images([s['img'] for s in samples], 'images').to(self.device).float()
        inputs = (images - self.mean) / self.std
        if all('gt_depth' in s for s in samples):
            depths = [np.asarray(s['gt_depth'], np.float32) for s in samples]
            for s, d in zip(samples, depths):
                if d.shape != s['img'].shape[:2]:
                    raise ValueError(f"{s.get('meta', {}).get('file')}: gt_depth {d.shape} and image "
                                     f"{s['img'].shape[:2]} differ in size")
            target = torch.from_numpy(np.stack(depths)[:, None]).to(self.device)
            samples = [dict(s, target=t) for s, t in zip(samples, target)]
        return dict(inputs=inputs, data_samples=samples)


@TASKS.register_module()
class DepthEstimator(TaskModel):
    """Monocular depth: ``tensor`` mode gives ``B x 1 x H x W`` depth in metres at the input size.

    Args:
        backbone: the encoder (e.g. ``MobileNetV1`` with ``out_indices`` for the stride 2, 4, 8 and 32 features).
        head: the decoder (``NNConv5Decoder``), built with the backbone's ``out_channels`` and ``strides``.
        losses: ``{'l1': 1.0}`` (the paper) or any weighted mix of ``'l1'``, ``'berhu'``, ``'silog'``.
        min_depth / max_depth: predictions are clamped to this range in ``predict`` (metres).
        test_cfg: ``max_pixels`` (default 2048 x 1024; ``None`` = no limit): ``predict`` scales a larger input down
            to that many pixels (anti-aliased) and resizes the depth back, so memory stays bounded. Down-scaling
            rather than windows: monocular depth is inferred from the whole scene's layout (FastDepth is trained on
            whole 224 x 224 frames); windows would each guess their own scale and disagree at the seams.
    """

    #: raw formats ``save_result`` writes: ``npy`` (float32 metres) and ``png16`` (uint16 millimetres)
    save_formats = ('npy', 'png16')

    def __init__(self, backbone: ModuleOrCfg, head: ModuleOrCfg, losses: Union[str, Mapping[str, float]] = 'l1',
                 min_depth: float = 1e-3, max_depth: float = 10.0, data_preprocessor: ModuleOrCfg = None,
                 init_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='DepthDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_part(backbone, BACKBONES)
        self.head = build_part(head, HEADS, in_channels=self.backbone.out_channels,
                               in_strides=self.backbone.strides)
        if getattr(self.head, 'out_channels', 1) != 1:
            raise ValueError(f'the depth head must output one channel, got {self.head.out_channels}')
        if isinstance(losses, str):
            losses = {losses: 1.0}
        unknown = sorted(set(losses) - set(DEPTH_LOSSES))
        if unknown or not losses:
            raise ValueError(f'unknown loss(es) {unknown}; choose from {sorted(DEPTH_LOSSES)}')
        if not 0 < min_depth < max_depth:
            raise ValueError(f'need 0 < min_depth < max_depth, got {min_depth} and {max_depth}')
        self.losses = dict(losses)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.max_pixels = _max_pixels_of(test_cfg)

    # --- forward modes ------------------------------------------------------------------------------------------
    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        depth = self.head(self.backbone(inputs))
        if depth.shape[-2:] != inputs.shape[-2:]:
            depth = F.interpolate(depth, size=inputs.shape[-2:], mode='bilinear', align_corners=False)
        return depth

    def loss(self, inputs: torch.Tensor, data_samples: List[dict]) -> Dict[str, torch.Tensor]:
        if any('target' not in s for s in data_samples):
            raise KeyError('training samples need gt_depth (the data preprocessor turns it into target)')
        target = torch.stack([s['target'] for s in data_samples])
        pred = self._forward(inputs)
        return {f'loss_{name}': weight * DEPTH_LOSSES[name](pred, target) for name, weight in self.losses.items()}

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples: List[dict]) -> List[dict]:
        """Per image: ``depth`` (original image size, float32 metres; 0 outside the region the network saw when
        the pipeline cropped) and ``depth_input`` (the network's frame, where a transformed ``gt_depth`` lives).

        An input over ``test_cfg['max_pixels']`` is seen by the network scaled down to that many pixels."""
        size = tuple(inputs.shape[-2:])
        output = self._forward(downscale_to_max_pixels(inputs, self.max_pixels))
        output = output.clamp(self.min_depth, self.max_depth)
        results = []
        for depth, sample in zip(output, data_samples):
            depth = depth[0].float().cpu().numpy()
            meta = sample.get('meta', {})
            ori_h, ori_w = meta.get('ori_shape', size)[:2]
            depth_input = depth if depth.shape == size else cv2.resize(depth, size[::-1],
                                                                       interpolation=cv2.INTER_LINEAR)
            results.append(dict(depth=self._to_original(depth, (ori_h, ori_w), meta.get('crop_box')),
                                depth_input=depth_input))
        return results

    @staticmethod
    def _to_original(depth: np.ndarray, shape, crop_box: Optional[Sequence[float]]) -> np.ndarray:
        """Resize the network's depth onto the region ``crop_box`` (x0, y0, x1, y1) of an image of ``shape``."""
        h, w = int(shape[0]), int(shape[1])
        if crop_box is None:
            crop_box = (0.0, 0.0, float(w), float(h))
        x0, y0, x1, y1 = (int(round(v)) for v in crop_box)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if (x0, y0, x1, y1) == (0, 0, w, h):  # the whole image: no second full-size array
            return depth.copy() if depth.shape == (h, w) else cv2.resize(depth, (w, h), interpolation=cv2.INTER_LINEAR)
        canvas = np.zeros((h, w), np.float32)
        if x1 > x0 and y1 > y0:
            canvas[y0:y1, x0:x1] = cv2.resize(depth, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        return canvas

    # --- outputs for people and files ---------------------------------------------------------------------------
    def visualize(self, image: np.ndarray, result: dict) -> np.ndarray:
        """The input beside its colour-mapped depth (near warm, far cold)."""
        from data.visualization.depth import depth_panel
        return depth_panel(image, result['depth'])

    def save_result(self, result: dict, stem: str) -> List[str]:
        """``stem.npy`` (float32 metres) and ``stem_depth_mm.png`` (uint16 millimetres, 0 = invalid)."""
        from data.io import check_writable
        depth = np.asarray(result['depth'], np.float32)
        os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
        written = []
        if 'npy' in self.save_formats:
            np.save(check_writable(stem + '.npy'), depth)
            written.append(stem + '.npy')
        if 'png16' in self.save_formats:
            millimetres = np.clip(np.round(np.nan_to_num(depth) * 1000.0), 0, 65535).astype(np.uint16)
            path = check_writable(stem + '_depth_mm.png')
            if not cv2.imwrite(path, millimetres):
                raise OSError(f'cannot write depth image {path}')
            written.append(path)
        return written
