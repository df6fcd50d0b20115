"""SSD default boxes (Liu et al., 2016, section 2.2 "Choosing scales and aspect ratios for default boxes").

For ``m`` maps the scale of map ``k`` is ``s_k = s_min + (s_max - s_min) (k - 1) / (m - 1)`` (0.2 to 0.95, a fraction
of the input side); each location gets a box of scale ``s_k`` and aspect ratio 1, one of scale
``sqrt(s_k s_{k+1})`` (``s_{m+1} = 1``), and boxes of scale ``s_k`` with aspect ratios ``a`` and ``1/a`` for each
``a`` in ``aspect_ratios`` ({2, 3}: six boxes per location, the setting of SSDLite in MobileNetV2, section 6.2).
Centres are ``((j + 0.5) / f_w, (i + 0.5) / f_h)`` on each ``f_h x f_w`` map; widths and heights are clipped to
[0, 1] before the boxes are scaled to pixels of the network input, for any input size.

``reduce_boxes_in_lowest_layer=True`` is the TF object detection API's setting of the same name, used by the
SSDLite-MobileNetV2 COCO model of the MobileNetV2 paper (Table 6, 4.3M parameters / 0.8B MACs at 320x320): the
first map gets only three boxes, scale ``lowest_scale`` (0.1) with ratio 1 and scale ``s_1`` (0.2) with ratios 2
and 1/2 (``multiple_grid_anchor_generator.create_ssd_anchors``); the other maps keep six.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..registry import TASKS


@TASKS.register_module()
class DefaultBoxGenerator:
    """Default boxes ``(N, 4)`` xyxy in input pixels, ordered (map, y, x, box) like ``SSDLiteHead``'s outputs."""

    def __init__(self, num_levels: int = 6, min_ratio: float = 0.2, max_ratio: float = 0.95,
                 aspect_ratios: Sequence[float] = (2.0, 3.0), scales: Optional[Sequence[float]] = None,
                 clip: bool = True, reduce_boxes_in_lowest_layer: bool = False, lowest_scale: float = 0.1) -> None:
        if num_levels < 1:
            raise ValueError(f'num_levels must be >= 1, got {num_levels}')
        if scales is None:
            if num_levels == 1:
                scales = [min_ratio, 1.0]
            else:
                step = (max_ratio - min_ratio) / (num_levels - 1)
                scales = [min_ratio + step * k for k in range(num_levels)] + [1.0]
        scales = list(scales)
        if len(scales) != num_levels + 1:
            raise ValueError(f'scales needs num_levels + 1 = {num_levels + 1} values (the last one only for the '
                             f'interpolated box of the last map), got {len(scales)}')
        if any(a <= 0 for a in aspect_ratios):
            raise ValueError(f'aspect ratios must be positive, got {list(aspect_ratios)}')
        self.num_levels, self.scales, self.aspect_ratios, self.clip = num_levels, scales, list(aspect_ratios), clip
        self.reduce_boxes_in_lowest_layer, self.lowest_scale = reduce_boxes_in_lowest_layer, lowest_scale
        self.wh = [self._wh_of_level(k) for k in range(num_levels)]
        self._cache: Dict[tuple, torch.Tensor] = {}

    @property
    def num_anchors(self) -> List[int]:
        """Boxes per location on each map (2 + 2 x len(aspect_ratios); 3 on the first with the reduced layer)."""
        return [len(wh) for wh in self.wh]

    def _wh_of_level(self, k: int) -> torch.Tensor:
        s, s_next = self.scales[k], self.scales[k + 1]
        if k == 0 and self.reduce_boxes_in_lowest_layer:
            r = math.sqrt(2.0)
            pairs = [[self.lowest_scale, self.lowest_scale], [s * r, s / r], [s / r, s * r]]
            wh = torch.tensor(pairs, dtype=torch.float32)
            return wh.clamp(0, 1) if self.clip else wh
        pairs = [[s, s], [math.sqrt(s * s_next)] * 2]
        for a in self.aspect_ratios:
            r = math.sqrt(a)
            pairs += [[s * r, s / r], [s / r, s * r]]
        wh = torch.tensor(pairs, dtype=torch.float32)
        return wh.clamp(0, 1) if self.clip else wh

    def __call__(self, grid_sizes: Sequence[Tuple[int, int]], image_size: Tuple[int, int],
                 device: torch.device = torch.device('cpu'), dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Boxes for maps of ``grid_sizes`` [(h, w), ...] on an input of ``image_size`` (h, w)."""
        if len(grid_sizes) != self.num_levels:
            raise ValueError(f'DefaultBoxGenerator was built for {self.num_levels} maps, got {len(grid_sizes)}')
        key = (tuple(tuple(int(v) for v in g) for g in grid_sizes), tuple(int(v) for v in image_size), str(device),
               dtype)
        if key not in self._cache:
            self._cache[key] = self._make(key[0], key[1]).to(device=device, dtype=dtype)
        return self._cache[key]

    def _make(self, grid_sizes, image_size) -> torch.Tensor:
        boxes = []
        for (fh, fw), wh in zip(grid_sizes, self.wh):
            cx = (torch.arange(fw, dtype=torch.float32) + 0.5) / fw
            cy = (torch.arange(fh, dtype=torch.float32) + 0.5) / fh
            cy, cx = torch.meshgrid(cy, cx, indexing='ij')
            centres = torch.stack([cx.reshape(-1), cy.reshape(-1)], -1)           # (H*W, 2)
            centres = centres[:, None].expand(-1, len(wh), 2).reshape(-1, 2)      # (H*W*A, 2)
            sizes = wh.repeat(fh * fw, 1)
            boxes.append(torch.cat([centres, sizes], 1))
        cxcywh = torch.cat(boxes)
        scale = torch.tensor([image_size[1], image_size[0]], dtype=torch.float32)
        half = 0.5 * cxcywh[:, 2:]
        return torch.cat([(cxcywh[:, :2] - half) * scale, (cxcywh[:, :2] + half) * scale], 1)
