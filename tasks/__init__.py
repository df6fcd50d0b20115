"""Task models (backbone + neck + head + loss + post-processing) and the public API.

Importing ``tasks`` also installs our checkpoint handling into mmengine (atomic writes, safe loading).
"""
from .registry import TASKS
from . import checkpoint  # noqa: F401  (registers the atomic file backend and the safe loader)
from .base import TaskModel
from .api import Inferencer, build_model, load_config, load_weights
from . import classification, depth, detection, segmentation, super_resolution, volumetric  # noqa: F401

__all__ = ['TASKS', 'TaskModel', 'Inferencer', 'build_model', 'load_config', 'load_weights']

from .fusion import fuse  # noqa: E402  (Conv+BN folding for inference, tasks/fusion.py)

__all__ += ['fuse']
