"""Semantic segmentation: Mobile DeepLabv3 (MobileNetV2), DeepLabV3 and LR-ASPP on MobileNetV3."""
from .loss import SegCrossEntropy
from .model import SegDataPreprocessor, Segmentor
from . import converters  # noqa: F401  (registers the torchvision weight converters)

__all__ = ['SegCrossEntropy', 'SegDataPreprocessor', 'Segmentor']
