"""Feature extractors: ``forward(x) -> list[Tensor]`` by increasing stride, with ``out_channels`` and ``strides``."""
from .registry import BACKBONES
from .layers import InvertedResidual, make_divisible
from .mobilenet import MobileNetV2, MobileNetV3
from .espcn import ESPCNFeatures
from .converters import WEIGHT_CONVERTERS, load_backbone_weights

__all__ = ['BACKBONES', 'InvertedResidual', 'make_divisible', 'MobileNetV2', 'MobileNetV3', 'ESPCNFeatures',
           'WEIGHT_CONVERTERS', 'load_backbone_weights']
from .mobilenet_v1 import MobileNetV1  # noqa: F401,E402  (FastDepth encoder, issue 4)
from .reversible_unet3d import ReversibleUNet3dEncoder  # noqa: F401,E402  (issue 5: reversible 3D U-Net)
