"""The task-model registry: a child of mmengine's ``MODELS`` so the Runner can build our models (DESIGN.md)."""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

TASKS = Registry('task', parent=MMENGINE_MODELS, scope='mobilevision', locations=['tasks'])

from mmengine.registry import HOOKS as MMENGINE_HOOKS  # noqa: E402

HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mobilevision', locations=['tasks.checkpoint'])

# Empty 'mobilevision' children of mmengine's other registries: with default_scope='mobilevision' the Runner
# looks for a child of that scope in every registry it builds from; these children make it fall back to
# mmengine's own classes quietly instead of warning at every build.
import mmengine.registry as _mmengine_registry  # noqa: E402

for _name in ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'LOG_PROCESSORS', 'VISBACKENDS', 'VISUALIZERS',
              'DATA_SAMPLERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'OPTIMIZERS', 'PARAM_SCHEDULERS',
              'EVALUATOR', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'INFERENCERS', 'TASK_UTILS', 'STRATEGIES'):
    _parent = getattr(_mmengine_registry, _name, None)
    if _parent is not None and 'mobilevision' not in _parent.children:
        Registry(_parent.name, parent=_parent, scope='mobilevision')
