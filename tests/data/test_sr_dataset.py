"""The SR folder dataset: LR/HR pairs aligned through crops, flips and rotations; clear errors on bad files."""
import numpy as np
import pytest

from data import DATASETS
from data.transforms import bicubic_downscale


def _corr(a, b):
    return np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1]


def test_training_patches_stay_aligned(assets):
    ds = DATASETS.build(dict(type='SRImageFolder', data_root=str(assets / 'sr' / 'Set5'), scale=3, num_samples=20,
                             pipeline=[dict(type='PairedRandomCrop', lr_size=17), dict(type='PairedFlipRotate')]))
    assert len(ds) == 20
    for i in range(20):
        s = ds[i]
        assert s['img'].shape == (17, 17, 3) and s['gt_hr'].shape == (51, 51, 3)
        assert _corr(bicubic_downscale(s['gt_hr'], 3), s['img']) > 0.9


def test_evaluation_samples_are_whole_mod_cropped_images(assets):
    ds = DATASETS.build(dict(type='SRImageFolder', data_root=str(assets / 'sr' / 'Set5'), scale=4))
    assert len(ds) == 5
    s = ds[0]
    assert s['gt_hr'].shape[0] == 4 * s['img'].shape[0] and s['gt_hr'].shape[1] == 4 * s['img'].shape[1]
    assert s['meta']['img_id'] == 'baby'


def test_corrupt_image_is_named(tmp_path):
    (tmp_path / 'broken.png').write_bytes(b'not a png at all')
    ds = DATASETS.build(dict(type='SRImageFolder', data_root=str(tmp_path), scale=2))
    with pytest.raises(ValueError, match='broken.png'):
        ds[0]


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        DATASETS.build(dict(type='SRImageFolder', data_root=str(tmp_path / 'nowhere'), scale=2))
