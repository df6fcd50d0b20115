"""What the sequential mobile backbones share: named feature points, output selection, initialisation,
checkpoint loading, stage freezing and ``norm_eval``."""
from __future__ import annotations

import re
from typing import List, NamedTuple, Optional, Sequence, Union

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

    Subclasses build ``features``, then call ``_finish(points, stage_ends, out_indices, layer_strides)``, which
    selects the outputs, initialises the weights and applies ``frozen_stages``. ``out_indices`` entries are indices
    into ``feature_names``, names from it, or ``'layer<N>'`` for the output of ``features[N]`` (how torchvision's
    segmentation models tap MobileNetV3, e.g. ``('layer4', 'last_conv')``); they must go deeper one by one.
    """

    features: nn.Sequential
    frozen_stages: int = -1
    norm_eval: bool = False
    pretrained: Optional[str] = None

    def _finish(self, points: List[FeaturePoint], stage_ends: List[int],
                out_indices: Optional[Sequence[Union[int, str]]], layer_strides: Sequence[int]) -> None:
        points = list(points)
        self.stage_ends = stage_ends
        names = [p.name for p in points]
        chosen: List[int] = []
        for entry in ((len(points) - 1,) if out_indices is None else out_indices):
            if isinstance(entry, str) and entry not in names:
                match = re.fullmatch(r'layer(\d+)', entry)
                if not match or int(match.group(1)) >= len(self.features):
                    raise ValueError(f"out_indices entry {entry!r} is neither a feature name {names} nor 'layer<N>' "
                                     f'with N < {len(self.features)}')
                layer = int(match.group(1))
                points.append(FeaturePoint(entry, layer, False, int(self.features[layer].out_channels),
                                           int(layer_strides[layer])))
                names.append(entry)
                chosen.append(len(points) - 1)
            elif isinstance(entry, str):
                chosen.append(names.index(entry))
            else:
                chosen.append(entry % len(names) if -len(names) <= entry < 0 else entry)
        depth = [(points[i].layer, not points[i].expanded) if 0 <= i < len(points) else None for i in chosen]
        if None in depth or depth != sorted(set(depth)):
            raise ValueError(f'out_indices must name feature points from shallow to deep out of {names} '
                             f"(or 'layer<N>'), got {list(out_indices)}")
        self.feature_points = points
        self.feature_names = names
        self.out_indices = chosen
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
