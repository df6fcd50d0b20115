"""A backbone kept as ``features = [stem, stage0, stage1, ...]`` (FasterNet, InceptionNeXt, MobileNetV4, MobileDet).

Each element of ``features`` is one module run in order; feature points are the outputs of chosen elements. The
output selection, freezing, ``norm_eval`` and checkpoint loading are those of ``FeaturePointBackbone``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch

from .base import FeaturePoint, FeaturePointBackbone

OutIndices = Optional[Sequence[Union[int, str]]]


class StagedBackbone(FeaturePointBackbone):
    """Runs ``features`` up to the deepest requested point and returns the requested outputs by depth."""

    def _finish_staged(self, points: List[Tuple[str, int, int, int]], stage_ends: List[int], out_indices: OutIndices,
                       default_out: Sequence[str], layer_strides: Sequence[int]) -> None:
        """``points``: (name, layer index, channels, stride); ``default_out``: names used when ``out_indices`` is
        None (the maps timm's ``features_only`` gives for the same model)."""
        feature_points = [FeaturePoint(name, layer, False, channels, stride)
                          for name, layer, channels, stride in points]
        self._finish(feature_points, stage_ends, tuple(default_out) if out_indices is None else out_indices,
                     layer_strides)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        wanted = {}
        for i in self.out_indices:
            wanted.setdefault(self.feature_points[i].layer, []).append(self.feature_points[i].name)
        outs = {}
        last = max(wanted)
        for index, layer in enumerate(self.features):
            if index > last:
                break
            x = layer(x)
            for name in wanted.get(index, []):
                outs[name] = x
        return [outs[self.feature_points[i].name] for i in self.out_indices]
