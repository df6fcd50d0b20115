"""All registries of the 'mobilevision' scope in one place; mmengine imports ``<scope>.registry`` when it
switches to a scope, and importing this module registers every model, dataset, transform and metric."""
from backbones import BACKBONES
from data import DATASETS, FUNCTIONS, METRICS, OFFLINE_SCORERS, TRANSFORMS
from heads import HEADS
from necks import NECKS
from tasks import TASKS
from tasks.registry import HOOKS

__all__ = ['BACKBONES', 'NECKS', 'HEADS', 'TASKS', 'HOOKS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'FUNCTIONS',
           'OFFLINE_SCORERS']
