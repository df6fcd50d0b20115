"""Task outputs built on backbone/neck features: each takes ``in_channels`` and exposes ``out_channels``."""
from .registry import HEADS
from .subpixel import SubPixelHead
from .classification import LinearClsHead
from .prelogits import PreLogitsClsHead
from .nnconv5 import NNConv5Decoder
from .unet3d import UNet3dHead
from . import deeplab, lraspp, ssdlite  # noqa: F401  (register the segmentation and detection heads)
from .yolo import YOLOHead

__all__ = ['HEADS', 'SubPixelHead', 'LinearClsHead', 'PreLogitsClsHead', 'NNConv5Decoder', 'UNet3dHead', 'YOLOHead']
