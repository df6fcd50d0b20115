"""The backbone registry (see DESIGN.md, Registries)."""
from mmengine.registry import Registry, build_model_from_cfg

BACKBONES = Registry('backbone', build_func=build_model_from_cfg, scope='mobilevision',
                     locations=['backbones'])
