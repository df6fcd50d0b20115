"""What the sequential mobile backbones share: named feature points, output selection, initialisation,
checkpoint loading, stage freezing and ``norm_eval``."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence

from mmengine.logging import MMLogger
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class FeaturePoint(NamedTuple):
    """A place features can be taken from: the output (or expansion output) of ``features[layer]``."""
    name: str
    layer: int          # index in ``features``
    expanded: bool      # take the block's expansion output instead of its output
    channels: int
    stride: int


class FeaturePointBackbone(nn.Module):
    """Base of backbones kept as one ``nn.Sequential`` called ``features`` with ``feature_points`` along it.

    Subclasses build ``features``, then call ``_finish(points, stage_ends, out_indices)``, which selects the outputs
    (``out_indices`` into ``feature_names``), initialises the weights and applies ``frozen_stages``.
    """

    features: nn.Sequential
    frozen_stages: int = -1
    norm_eval: bool = False
    pretrained: Optional[str] = None

    def _finish(self, points: List[FeaturePoint], stage_ends: List[int],
                out_indices: Optional[Sequence[int]]) -> None:
        self.feature_points = points
        self.feature_names = [p.name for p in points]
        self.stage_ends = stage_ends
        if out_indices is None:
            out_indices = (len(points) - 1,)
        out_indices = [i % len(points) if i < 0 else i for i in out_indices]
        if any(not 0 <= i < len(points) for i in out_indices) or list(out_indices) != sorted(set(out_indices)):
            raise ValueError(f'out_indices must be increasing indices into {self.feature_names}, '
                             f'got {list(out_indices)}')
        self.out_indices = list(out_indices)
        self.out_channels = [points[i].channels for i in self.out_indices]
        self.strides = [points[i].stride for i in self.out_indices]
        self._reset_parameters()
        self._freeze_stages()

    def _reset_parameters(self) -> None:
        """torchvision's MobileNet initialisation: Kaiming (fan-out) convolutions, unit norms."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def init_weights(self, checkpoint: Optional[str] = None) -> None:
        """Load ``checkpoint`` (ours, a full model's with ``backbone.`` keys, or a torchvision MobileNet's)."""
        checkpoint = checkpoint or self.pretrained
        if not checkpoint:
            return
        from .converters import load_backbone_weights
        missing, unexpected = load_backbone_weights(self, checkpoint)
        MMLogger.get_current_instance().info(
            f'loaded backbone weights from {checkpoint} (missing {len(missing)}, unexpected {len(unexpected)})')

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        last = self.stage_ends[min(self.frozen_stages, len(self.stage_ends) - 1)]
        for layer in self.features[:last + 1]:
            layer.eval()
            for p in layer.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
