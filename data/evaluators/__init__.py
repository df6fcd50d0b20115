"""Benchmark evaluators (mmengine ``BaseMetric``s) and the offline scorers of ``tools/evaluate.py``."""
from .image_quality import SRMetric, psnr, ssim
from .offline import PSNRScorer, match_by_stem
from .coco_metric import CocoMetric, CocoScorer
from .voc_metric import VOCMetric, VOCScorer
from .miou import IoUMetric, MIoUScorer
from .depth_metrics import DepthMetric, DepthScorer, depth_errors
from .brats_metrics import BraTSDiceScorer, BraTSMetric

__all__ = ['SRMetric', 'psnr', 'ssim', 'PSNRScorer', 'match_by_stem', 'CocoMetric', 'CocoScorer', 'VOCMetric',
           'VOCScorer', 'IoUMetric', 'MIoUScorer', 'DepthMetric', 'DepthScorer', 'depth_errors', 'BraTSDiceScorer',
           'BraTSMetric']
