"""Image classification: a backbone with a linear head (MobileNetV2/V3 ImageNet architectures)."""
from .model import ClsDataPreprocessor, ImageClassifier

__all__ = ['ClsDataPreprocessor', 'ImageClassifier']
