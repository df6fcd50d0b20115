"""Data registries: children of mmengine's, so the Runner finds our datasets, transforms, metrics, collates."""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='mobilevision', locations=['data.datasets'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='mobilevision', locations=['data.transforms'])
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='mobilevision', locations=['data.evaluators'])
FUNCTIONS = Registry('function', parent=MMENGINE_FUNCTIONS, scope='mobilevision', locations=['data'])
# offline scorers for tools/evaluate.py: name -> class with add_arguments(parser) and score(args) -> dict
OFFLINE_SCORERS = Registry('offline scorer', scope='mobilevision', locations=['data.evaluators'])
