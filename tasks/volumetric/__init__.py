"""Volumetric segmentation (BraTS brain tumours): the reversible 3D U-Net task model, losses, sliding window."""
from .model import VolumetricPreprocessor, VolumetricSegmentor
from .sliding_window import gaussian_weight, sliding_window_inference

__all__ = ['VolumetricSegmentor', 'VolumetricPreprocessor', 'sliding_window_inference', 'gaussian_weight']
