"""Tiny ray-cast indoor scenes with exact depth, for the learning test.

A pinhole camera at the origin looks down +z (y points down). Each scene has a floor (the plane y = camera
height), a back wall (z = constant) and a few boxes standing on the floor (their front faces are fronto-parallel
at known depths). Surfaces carry a checkerboard fixed in world units (its image frequency falls with distance)
and are dimmed with distance, so appearance carries depth cues. Depth is the z of the first surface hit.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def render_scene(rng: np.random.Generator, size: int = 64, focal: float = 56.0) -> Tuple[np.ndarray, np.ndarray]:
    """(HxWx3 uint8 image, HxW float32 depth in metres) of one random scene."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    dx, dy = (u - size / 2) / focal, (v - size / 2) / focal
    height = rng.uniform(1.0, 1.6)           # camera above the floor
    wall = rng.uniform(4.0, 8.0)             # back wall depth
    depth = np.full((size, size), wall)
    x, y = dx * wall, dy * wall
    surface = np.zeros((size, size), np.int64)  # 0 wall, 1 floor, 2.. boxes
    floor_z = np.where(dy > 1e-6, height / np.maximum(dy, 1e-6), np.inf)
    on_floor = floor_z < depth
    depth = np.where(on_floor, floor_z, depth)
    x = np.where(on_floor, dx * floor_z, x)
    y = np.where(on_floor, -floor_z, y)      # checker on the floor runs in (x, z)
    surface[on_floor] = 1
    for k in range(rng.integers(1, 4)):
        z = rng.uniform(1.5, wall - 0.5)
        half_w, box_h = rng.uniform(0.3, 0.8), rng.uniform(0.4, 1.4)
        centre = rng.uniform(-0.5, 0.5) * z * size / focal
        hit = (np.abs(dx * z - centre) < half_w) & (dy * z > height - box_h) & (dy * z < height) & (z < depth)
        depth = np.where(hit, z, depth)
        x, y = np.where(hit, dx * z, x), np.where(hit, dy * z, y)
        surface[hit] = 2 + k
    colours = rng.uniform(0.35, 1.0, size=(8, 3))
    checker = ((np.floor(x / 0.3) + np.floor(y / 0.3)) % 2) * 0.5 + 0.5
    shade = np.exp(-depth / 9.0)
    image = colours[surface] * (checker * shade)[..., None]
    return np.clip(image * 255, 0, 255).astype(np.uint8), depth.astype(np.float32)
