"""Feature fusion between backbones and heads (SSDLite extra layers, FPN/PAN, ASPP-lite)."""
from mmengine.registry import Registry, build_model_from_cfg

NECKS = Registry('neck', build_func=build_model_from_cfg, scope='mobilevision', locations=['necks'])

__all__ = ['NECKS']
from . import aspp  # noqa: E402,F401  (ASPP / ASPP-lite, issue 3)
from . import ssdlite  # noqa: E402,F401  (SSDLite extra layers, issue 2)
