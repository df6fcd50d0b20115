"""The head registry (see DESIGN.md, Registries)."""
from mmengine.registry import Registry, build_model_from_cfg

HEADS = Registry('head', build_func=build_model_from_cfg, scope='mobilevision', locations=['heads'])
