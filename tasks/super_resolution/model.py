"""ESPCN super-resolution as a task model (Shi et al., 2016): backbone features + sub-pixel head."""
from __future__ import annotations

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
            images = [rgb_to_y(im).astype(np.float32) for im in images]
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
    """

    def __init__(self, backbone: ModuleOrCfg, head: ModuleOrCfg, scale: int, color: str = 'y',
                 loss: str = 'mse', data_preprocessor: ModuleOrCfg = None, init_cfg: Optional[dict] = None) -> None:
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

    def predict(self, inputs: torch.Tensor, data_samples: List[dict]) -> List[dict]:
        output = self._forward(inputs).clamp(0, 1) * 255.0
        results = []
        for out, sample in zip(output, data_samples):
            out = out.detach().cpu().double().numpy()
            lr = sample['img']
            size = (lr.shape[0] * self.scale, lr.shape[1] * self.scale)
            if self.color == 'y':
                ycbcr = rgb_to_ycbcr(bicubic_resize(lr, size))
                ycbcr[..., 0] = out[0]
                image = ycbcr_to_rgb(ycbcr)
                results.append(dict(image=np.clip(np.round(image), 0, 255).astype(np.uint8), y=out[0]))
            else:
                results.append(dict(image=np.clip(np.round(out.transpose(1, 2, 0)), 0, 255).astype(np.uint8)))
        return results

    def save_result(self, result: dict, stem: str) -> List[str]:
        """The super-resolved image itself (the picture of ``visualize`` is the side-by-side comparison)."""
        from data.io import write_rgb
        write_rgb(stem + '_sr.png', result['image'])
        return [stem + '_sr.png']

    def visualize(self, image: np.ndarray, result: dict) -> np.ndarray:
        """Bicubic (left) and ESPCN (right) side by side, labelled."""
        from data.visualization import label_panels
        sr = result['image']
        bicubic = bicubic_resize(image, sr.shape[:2])
        return label_panels([bicubic, sr], ['bicubic', f'ESPCN x{self.scale}'])
