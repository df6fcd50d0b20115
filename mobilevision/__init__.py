"""mobilevision: task-oriented vision pipelines on efficient networks.

The code lives in the top-level packages ``backbones``, ``necks``, ``heads``, ``tasks`` and ``data``
(DESIGN.md); this package names the registry scope ``'mobilevision'`` for mmengine.
"""
__version__ = '0.1.0'
