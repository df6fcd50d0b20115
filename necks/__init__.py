"""Feature fusion between backbones and heads (SSDLite extra layers, ASPP / ASPP-lite, LeNeck)."""
from mmengine.registry import Registry, build_model_from_cfg

NECKS = Registry('neck', build_func=build_model_from_cfg, scope='mobilevision', locations=['necks'])

from . import aspp, ssdlite  # noqa: E402  (register the necks)
from . import leneck  # noqa: E402

__all__ = ['NECKS', 'aspp', 'ssdlite', 'leneck']
