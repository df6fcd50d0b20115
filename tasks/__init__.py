"""Task models (backbone + neck + head + loss + post-processing) and the public API.

Importing ``tasks`` also installs our checkpoint handling into mmengine (atomic writes, safe loading).
"""
from .registry import TASKS
from . import checkpoint  # noqa: F401  (registers the atomic file backend and the safe loader)
from .base import TaskModel
from .api import Inferencer, build_model, load_config, load_weights
from . import classification, super_resolution  # noqa: F401  (register the task models)

__all__ = ['TASKS', 'TaskModel', 'Inferencer', 'build_model', 'load_config', 'load_weights']
from . import segmentation  # noqa: F401,E402  (issue 3)
from . import depth  # noqa: F401,E402  (issue 4)
from . import detection  # noqa: F401,E402  (issue 2: SSDLite detection)
from . import volumetric  # noqa: F401,E402  (issue 5: BraTS volumes)
