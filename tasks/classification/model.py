"""Backbone + ``heads.LinearClsHead``: the ImageNet networks of the MobileNetV2/V3 papers."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from backbones import BACKBONES
from heads import HEADS
from ..base import ModuleOrCfg, SampleListPreprocessor, TaskModel, build_part, stack_images
from ..registry import TASKS

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@TASKS.register_module()
class ClsDataPreprocessor(SampleListPreprocessor):
    """RGB uint8 images of one size -> normalised float batch (ImageNet mean/std by default)."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def process(self, samples: List[dict], training: bool) -> dict:
        batch = stack_images([s['img'] for s in samples], 'images').to(self.mean.device).float()
        return dict(inputs=(batch - self.mean) / self.std, data_samples=samples)


@TASKS.register_module()
class ImageClassifier(TaskModel):
    def __init__(self, backbone: ModuleOrCfg, head: ModuleOrCfg, data_preprocessor: ModuleOrCfg = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='ClsDataPreprocessor'), init_cfg=init_cfg)
        self.backbone = build_part(backbone, BACKBONES)
        self.head = build_part(head, HEADS, in_channels=self.backbone.out_channels)

    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(inputs))

    def loss(self, inputs: torch.Tensor, data_samples: List[dict]) -> Dict[str, torch.Tensor]:
        labels = torch.as_tensor([int(s['gt_label']) for s in data_samples], device=inputs.device)
        return {'loss_cls': F.cross_entropy(self._forward(inputs), labels)}

    def predict(self, inputs: torch.Tensor, data_samples: List[dict]) -> List[dict]:
        scores = self._forward(inputs).softmax(-1)
        return [dict(label=int(s.argmax()), scores=s.detach().cpu().numpy()) for s in scores]

    def visualize(self, image: np.ndarray, result: dict) -> np.ndarray:
        from data.visualization import put_label
        return put_label(image.copy(), f"class {result['label']} ({result['scores'][result['label']]:.2f})")
