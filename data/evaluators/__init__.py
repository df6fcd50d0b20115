"""Benchmark evaluators (mmengine ``BaseMetric``s) and the offline scorers of ``tools/evaluate.py``."""
from .image_quality import SRMetric, psnr, ssim
from .offline import PSNRScorer, match_by_stem

__all__ = ['SRMetric', 'psnr', 'ssim', 'PSNRScorer', 'match_by_stem']
from .miou import IoUMetric, MIoUScorer  # noqa: F401,E402  (issue 3)
