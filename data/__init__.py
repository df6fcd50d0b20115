"""Datasets, transforms and evaluators. Datasets stay on the CPU and return plain sample dicts (DESIGN.md)."""
from .registry import DATASETS, FUNCTIONS, METRICS, OFFLINE_SCORERS, TRANSFORMS
from .collate import sample_list_collate
from . import datasets, evaluators, transforms  # noqa: F401  (register everything)

__all__ = ['DATASETS', 'TRANSFORMS', 'METRICS', 'FUNCTIONS', 'OFFLINE_SCORERS', 'sample_list_collate']
