"""Feature extractors: ``forward(x) -> list[Tensor]`` by increasing stride, with ``out_channels`` and ``strides``."""
from .registry import BACKBONES
from .layers import SPPF, InvertedResidual, make_divisible, normal_init
from .base import FeaturePoint, FeaturePointBackbone
from .mobilenet import MobileNetV2, MobileNetV3
from .mobilenet_v1 import MobileNetV1
from .leyolo import LeYOLONet
from .espcn import ESPCNFeatures
from .reversible_unet3d import ReversibleUNet3dEncoder
from .converters import WEIGHT_CONVERTERS, load_backbone_weights, register_converter
from .fasternet import FasterNet
from .inception_next import InceptionNeXt
from .mobilenet_v4 import MobileNetV4
from .mobiledet import MobileDet
from .timm_adapter import TimmBackbone
from . import timm_converters  # noqa: F401  (tools/convert_weights.py --arch <timm name>)

__all__ = ['BACKBONES', 'InvertedResidual', 'make_divisible', 'normal_init', 'FeaturePoint', 'FeaturePointBackbone',
           'MobileNetV1', 'MobileNetV2', 'MobileNetV3', 'ESPCNFeatures', 'ReversibleUNet3dEncoder',
           'WEIGHT_CONVERTERS', 'load_backbone_weights', 'register_converter', 'LeYOLONet', 'SPPF',
           'FasterNet', 'InceptionNeXt', 'MobileNetV4', 'MobileDet', 'TimmBackbone']
