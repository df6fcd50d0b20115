"""PSNR and SSIM as the super-resolution tables compute them.

On the luma of ITU-R BT.601 (MATLAB ``rgb2ycbcr``), ``scale`` pixels cropped from every border, in float64 on
[0, 255]. SSIM is Wang et al. (2004): 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, averaged over
the positions where the window fits (as MATLAB's ``ssim_index`` and ``skimage``'s Gaussian SSIM).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ..registry import METRICS
from ..transforms.color import rgb_to_y
from ..transforms.resize import bicubic_resize


def _crop(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border > 0 else image


def psnr(prediction: np.ndarray, target: np.ndarray, border: int = 0, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two arrays of one shape, after cropping ``border`` pixels."""
    if prediction.shape != target.shape:
        raise ValueError(f'PSNR needs arrays of one shape, got {prediction.shape} and {target.shape}')
    diff = _crop(np.asarray(prediction, np.float64), border) - _crop(np.asarray(target, np.float64), border)
    mse = float(np.mean(diff ** 2))
    return float('inf') if mse == 0 else 10.0 * np.log10(data_range ** 2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-x ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    return np.outer(g, g)


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    pad = window.shape[0] // 2
    full = cv2.filter2D(image, cv2.CV_64F, window, borderType=cv2.BORDER_REFLECT)
    return full[pad:-pad, pad:-pad]


def ssim(prediction: np.ndarray, target: np.ndarray, border: int = 0, data_range: float = 255.0) -> float:
    """Structural similarity of two single-channel images (mean over valid window positions)."""
    if prediction.shape != target.shape or prediction.ndim != 2:
        raise ValueError(f'SSIM needs two HxW arrays of one shape, got {prediction.shape} and {target.shape}')
    x = _crop(np.asarray(prediction, np.float64), border)
    y = _crop(np.asarray(target, np.float64), border)
    window = _gaussian_window()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter_valid(x, window), _filter_valid(y, window)
    sxx = _filter_valid(x * x, window) - mu_x ** 2
    syy = _filter_valid(y * y, window) - mu_y ** 2
    sxy = _filter_valid(x * y, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return float(ssim_map.mean())


def score_pair(prediction: np.ndarray, target: np.ndarray, border: int, color: str = 'y') -> Dict[str, float]:
    """PSNR/SSIM of an SR output against its HR image (RGB arrays, or luma already)."""
    if color == 'y':
        p = prediction if prediction.ndim == 2 else rgb_to_y(prediction)
        t = target if target.ndim == 2 else rgb_to_y(target)
        return dict(psnr=psnr(p, t, border), ssim=ssim(p, t, border))
    if color != 'rgb':
        raise ValueError(f"color must be 'y' or 'rgb', got {color!r}")
    p, t = np.asarray(prediction, np.float64), np.asarray(target, np.float64)
    return dict(psnr=psnr(p, t, border),
                ssim=float(np.mean([ssim(p[..., c], t[..., c], border) for c in range(p.shape[-1])])))


@METRICS.register_module()
class SRMetric(BaseMetric):
    """PSNR/SSIM of SR results, plus the bicubic baseline on the same images.

    Uses the prediction's luma ``result['y']`` (float, what the network output) when the model works on Y,
    else the luma of ``result['image']``. ``border`` defaults to ``scale``.
    """

    default_prefix = 'sr'

    def __init__(self, scale: int, border: Optional[int] = None, color: str = 'y', baseline: bool = True,
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.scale, self.border = scale, scale if border is None else border
        self.color, self.baseline = color, baseline

    def process(self, data_batch: Sequence[dict], data_samples: Sequence[dict]) -> None:
        for sample, result in zip(data_batch, data_samples):
            hr = sample['gt_hr']
            prediction = result['y'] if self.color == 'y' and 'y' in result else result['image']
            if prediction.shape[:2] != hr.shape[:2]:
                raise ValueError(f"{sample['meta'].get('file')}: SR output {prediction.shape[:2]} and HR image "
                                 f'{hr.shape[:2]} differ in size')
            record = {k.upper(): v for k, v in score_pair(prediction, hr, self.border, self.color).items()}
            if self.baseline:
                upscaled = bicubic_resize(sample['img'], hr.shape[:2])
                record.update({f'bicubic_{k.upper()}': v
                               for k, v in score_pair(upscaled, hr, self.border, self.color).items()})
            record['name'] = sample['meta'].get('img_id')
            self.results.append(record)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        keys = [k for k in results[0] if k != 'name']
        metrics = {k: float(np.mean([r[k] for r in results])) for k in keys}
        logger = MMLogger.get_current_instance()
        for r in results:
            logger.info('  '.join([str(r['name'])] + [f'{k}={r[k]:.4f}' for k in keys]))
        return metrics
