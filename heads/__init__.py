"""Task outputs built on backbone/neck features: each takes ``in_channels`` and exposes ``out_channels``."""
from .registry import HEADS
from .subpixel import SubPixelHead
from .classification import LinearClsHead

__all__ = ['HEADS', 'SubPixelHead', 'LinearClsHead']
from . import deeplab, lraspp  # noqa: F401  (segmentation heads, issue 3)
