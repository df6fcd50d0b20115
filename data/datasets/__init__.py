"""Datasets: each returns plain sample dicts with the keys of DESIGN.md (img, gt_*, meta)."""
from .sr_folder import SRImageFolder, build_pipeline

__all__ = ['SRImageFolder', 'build_pipeline']
