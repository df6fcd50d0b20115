"""Benchmark evaluators (mmengine ``BaseMetric``s) and the offline scorers of ``tools/evaluate.py``."""
from .image_quality import SRMetric, psnr, ssim
from .offline import PSNRScorer, match_by_stem
from .depth_metrics import DepthMetric, DepthScorer, depth_errors  # noqa: F401  (issue 4)
from .coco_metric import CocoMetric, CocoScorer  # noqa: F401  (issue 2)
from .voc_metric import VOCMetric, VOCScorer  # noqa: F401  (issue 2)

__all__ = ['SRMetric', 'psnr', 'ssim', 'PSNRScorer', 'match_by_stem']
from .miou import IoUMetric, MIoUScorer  # noqa: F401,E402  (issue 3)
from .brats_metrics import BraTSDiceScorer, BraTSMetric  # noqa: F401,E402  (issue 5)
