"""Super-resolution: ESPCN (sub-pixel convolution) on images and video frames."""
from .model import SRDataPreprocessor, SuperResolver

__all__ = ['SRDataPreprocessor', 'SuperResolver']
