"""The task-model registry: a child of mmengine's ``MODELS`` so the Runner can build our models (DESIGN.md)."""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

TASKS = Registry('task', parent=MMENGINE_MODELS, scope='mobilevision', locations=['tasks'])

from mmengine.registry import HOOKS as MMENGINE_HOOKS  # noqa: E402

HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mobilevision', locations=['tasks.checkpoint'])
