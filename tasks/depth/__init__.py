"""Monocular depth estimation: FastDepth (MobileNet encoder + NNConv5 decoder with additive skips)."""
from . import converter  # noqa: F401  (registers tools/convert_weights.py --arch fastdepth)
from .losses import DEPTH_LOSSES, berhu_loss, l1_loss, silog_loss
from .model import DepthDataPreprocessor, DepthEstimator

__all__ = ['DEPTH_LOSSES', 'berhu_loss', 'l1_loss', 'silog_loss', 'DepthDataPreprocessor', 'DepthEstimator']
