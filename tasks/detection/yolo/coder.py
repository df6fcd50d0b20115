"""Anchor points and the distance (ltrb) box coding of anchor-free YOLO-style heads.

Every cell of a stride-``s`` feature map is one anchor point at its centre, ``((j + 0.5) s, (i + 0.5) s)`` in input
pixels (offset 0.5, YOLOv8's design). The head predicts, per side (left, top, right, bottom), a discrete distribution
over ``reg_max`` bins ``0..reg_max-1`` in stride units; its expectation is the distance (Generalized Focal Loss,
Li et al., 2020, Sec. 3.3, "integral"). ``distance_to_bbox`` / ``bbox_to_distance`` convert between point-relative
distances and xyxy boxes; both work in whatever unit the points are given in (pixels, or stride units when the
points are divided by their stride).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch


def make_anchor_points(feature_shapes: Sequence[Tuple[int, int]], strides: Sequence[int], offset: float = 0.5,
                       device: Optional[torch.device] = None,
                       dtype: torch.dtype = torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
    """Anchor points of all levels, in level order and row-major within a level.

    Returns ``points`` (N, 2) as pixel ``(cx, cy) = ((j + offset) * stride, (i + offset) * stride)`` and
    ``stride_tensor`` (N, 1) holding each point's stride.
    """
    if len(feature_shapes) != len(strides):
        raise ValueError(f'need one stride per feature map, got {len(feature_shapes)} shapes and {len(strides)} '
                         'strides')
    points, stride_list = [], []
    for (h, w), stride in zip(feature_shapes, strides):
        ys = (torch.arange(int(h), device=device, dtype=dtype) + offset) * stride
        xs = (torch.arange(int(w), device=device, dtype=dtype) + offset) * stride
        yy, xx = torch.meshgrid(ys, xs, indexing='ij')
        points.append(torch.stack([xx, yy], -1).reshape(-1, 2))
        stride_list.append(torch.full((int(h) * int(w), 1), float(stride), device=device, dtype=dtype))
    if not points:
        return torch.zeros(0, 2, device=device, dtype=dtype), torch.zeros(0, 1, device=device, dtype=dtype)
    return torch.cat(points), torch.cat(stride_list)


def dfl_expectation(box_logits: torch.Tensor) -> torch.Tensor:
    """(..., 4, reg_max) bin logits -> (..., 4) distances: softmax over the bins, then the expected bin index."""
    reg_max = box_logits.shape[-1]
    bins = torch.arange(reg_max, device=box_logits.device, dtype=box_logits.dtype)
    return box_logits.softmax(-1).matmul(bins)


def distance_to_bbox(points: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """Points (N, 2) and ltrb distances (..., N, 4) in the same unit -> xyxy boxes (..., N, 4)."""
    left_top, right_bottom = distances[..., :2], distances[..., 2:]
    return torch.cat([points - left_top, points + right_bottom], -1)


def bbox_to_distance(points: torch.Tensor, bboxes: torch.Tensor, max_dist: Optional[float] = None) -> torch.Tensor:
    """Points (N, 2) and xyxy boxes (..., N, 4) in the same unit -> ltrb distances (..., N, 4).

    With ``max_dist`` the distances are clamped to ``[0, max_dist]`` (the DFL targets use ``reg_max - 1 - 0.01``).
    """
    dist = torch.cat([points - bboxes[..., :2], bboxes[..., 2:] - points], -1)
    if max_dist is not None:
        dist = dist.clamp(0.0, max_dist)
    return dist
