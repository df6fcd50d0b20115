"""Task outputs built on backbone/neck features: each takes ``in_channels`` and exposes ``out_channels``."""
from .registry import HEADS
from .subpixel import SubPixelHead
from .classification import LinearClsHead

__all__ = ['HEADS', 'SubPixelHead', 'LinearClsHead']
from . import deeplab, lraspp  # noqa: F401  (segmentation heads, issue 3)
from .nnconv5 import NNConv5Decoder  # noqa: F401,E402  (FastDepth decoder, issue 4)
from .unet3d import UNet3dHead  # noqa: F401,E402  (issue 5)
from . import ssdlite  # noqa: F401,E402  (SSDLite head, issue 2)
