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

__all__ = ['BACKBONES', 'InvertedResidual', 'make_divisible', 'normal_init', 'FeaturePoint', 'FeaturePointBackbone',
           'MobileNetV1', 'MobileNetV2', 'MobileNetV3', 'ESPCNFeatures', 'ReversibleUNet3dEncoder',
           'WEIGHT_CONVERTERS', 'load_backbone_weights', 'register_converter', 'LeYOLONet', 'SPPF']
