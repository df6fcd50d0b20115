"""PSNR/SSIM: equal to scikit-image on the same arrays; Set5 x3 bicubic equals the published 30.39 dB."""
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from data.evaluators import psnr, ssim
from data.evaluators.image_quality import SRMetric
from data.io import list_images, read_rgb
from data.transforms import bicubic_downscale, bicubic_resize, mod_crop, rgb_to_y


def test_psnr_and_ssim_equal_skimage():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (48, 40))
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255)
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)
    expected = structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_psnr_hand_computed_with_border():
    a = np.zeros((6, 6))
    b = np.zeros((6, 6))
    b[2:4, 2:4] = 10.0            # inside the cropped region: MSE = 4 * 100 / 16 = 25
    b[0, 0] = 255.0               # on the border: ignored
    assert psnr(a, b, border=1) == pytest.approx(10 * np.log10(255 ** 2 / 25.0))


def test_luma_is_bt601_studio_swing():
    assert rgb_to_y(np.array([[[0, 0, 0]]], np.uint8))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == pytest.approx(235.0)


def test_set5_x3_bicubic_matches_the_published_baseline(assets):
    values = []
    for path in list_images(assets / 'sr' / 'Set5'):
        hr = mod_crop(read_rgb(path), 3)
        up = bicubic_resize(bicubic_downscale(hr, 3), hr.shape[:2])
        values.append(psnr(rgb_to_y(up), rgb_to_y(hr), border=3))
    assert len(values) == 5
    assert np.mean(values) == pytest.approx(30.39, abs=0.05)


def test_metric_reports_model_and_bicubic():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    lr = bicubic_downscale(hr, 2)
    metric = SRMetric(scale=2)
    metric.process([dict(img=lr, gt_hr=hr, meta=dict(img_id='x'))], [dict(image=hr)])
    out = metric.compute_metrics(metric.results)
    assert out['PSNR'] == float('inf') and out['SSIM'] == pytest.approx(1.0)
    assert out['bicubic_PSNR'] < 40
