"""BraTS loading on the real NIfTI brain (orientation, spacing), bad-input errors, z-scoring, transforms."""
import shutil

import nibabel as nib
import numpy as np
import pytest

from data.datasets.brats import (BraTSDataset, SyntheticBraTS, case_name_of, check_labels, find_cases, load_case,
                                 load_volume_file, make_synthetic_case, read_nifti, write_nifti, zscore_in_mask)
from data.transforms.volumetric import RandomIntensityShiftScale, RandomVolumeFlip, RandomVolumePatch

MODS = ('t1', 't1ce', 't2', 'flair')


@pytest.fixture
def brain(assets):
    return assets / 'volumetric' / 'anatomical.nii'


def make_case(root, brain_path, name='Brain_001', seg_values=None, drop=None, shape_of=None):
    """A case folder from the real T1 brain: four 'modalities' (scaled copies) and the brain mask as labels."""
    image = nib.load(str(brain_path))
    data = np.asarray(image.dataobj, np.float32)
    folder = root / name
    folder.mkdir(parents=True)
    for i, mod in enumerate(MODS):
        if mod == drop:
            continue
        volume = data * (i + 1) + 10 * i * (data > 0)
        if mod == shape_of:
            volume = volume[:-1]
        nib.save(nib.Nifti1Image(volume, image.affine), str(folder / f'{name}_{mod}.nii.gz'))
    label = np.asarray(nib.load(str(brain_path.parent / 'anatomical_label.nii.gz')).dataobj).astype(np.uint8)
    if seg_values is not None:
        label = label * np.uint8(seg_values)
    nib.save(nib.Nifti1Image(label, image.affine), str(folder / f'{name}_seg.nii.gz'))
    return folder


def test_read_real_nifti_axes_and_spacing(brain):
    image = nib.load(str(brain))
    raw = np.asarray(image.dataobj)
    volume, affine, spacing = read_nifti(brain)
    assert raw.shape == (33, 41, 25) and volume.shape == (25, 41, 33)       # (i, j, k) -> (D, H, W) = (k, j, i)
    assert volume[3, 7, 11] == raw[11, 7, 3]
    assert np.array_equal(affine, image.affine) and spacing == (2.0, 2.0, 2.0)
    # the file is LAS (x axis flipped); canonical reorientation flips W and keeps world positions
    canon, canon_affine, _ = read_nifti(brain, canonical=True)
    assert canon_affine[0, 0] == 2.0 and affine[0, 0] == -2.0
    assert np.array_equal(canon, volume[:, :, ::-1])
    d, h, w = 3, 7, 11
    world = affine @ np.array([w, h, d, 1.0])
    world_canon = canon_affine @ np.array([32 - w, h, d, 1.0])
    assert np.allclose(world, world_canon)


def test_write_nifti_round_trip(tmp_path, brain):
    volume, affine, _ = read_nifti(brain)
    labels = (volume > volume.mean()).astype(np.uint8) * 4
    path = write_nifti(tmp_path / 'pred.nii.gz', labels, affine)
    back, back_affine, spacing = read_nifti(path)
    assert np.array_equal(back, labels) and np.allclose(back_affine, affine) and spacing == (2.0, 2.0, 2.0)


def test_load_case_from_real_brain(tmp_path, brain):
    folder = make_case(tmp_path, brain, seg_values=4)
    sample = load_case(folder)
    img, seg, meta = sample['img'], sample['gt_seg'], sample['meta']
    assert img.shape == (4, 25, 41, 33) and img.dtype == np.float32
    assert seg.shape == (25, 41, 33) and seg.dtype == np.int64 and set(np.unique(seg)) == {0, 4}
    assert meta['img_id'] == 'Brain_001' and meta['spacing'] == (2.0, 2.0, 2.0) and meta['ori_shape'] == (25, 41, 33)
    assert np.array_equal(meta['affine'], img.affine)
    brain_mask = np.any(img != 0, axis=0)
    for c in range(4):  # z-scored inside the brain, zero outside
        assert abs(img[c][brain_mask].mean()) < 1e-4 and abs(img[c][brain_mask].std() - 1) < 1e-3
    assert np.all(img[:, ~brain_mask] == 0)
    # a single modality file reads the whole case; a dataset lists the case folder
    assert np.array_equal(load_volume_file(folder / 'Brain_001_flair.nii.gz')['img'], img)
    dataset = BraTSDataset(str(tmp_path))
    assert len(dataset) == 1 and np.array_equal(dataset[0]['gt_seg'], seg)
    assert find_cases(tmp_path) == [folder]


def test_label_3_is_read_as_4(tmp_path, brain):
    sample = load_case(make_case(tmp_path, brain, seg_values=3))
    assert set(np.unique(sample['gt_seg'])) == {0, 4}


@pytest.mark.parametrize('kwargs,message', [
    (dict(drop='t1ce'), 'case Bad: missing t1ce'),
    (dict(shape_of='t2'), 'case Bad: t2 has shape'),
    (dict(seg_values=5), r'case Bad: unknown label\(s\) \[5\]'),
])
def test_bad_cases_name_the_case(tmp_path, brain, kwargs, message):
    folder = make_case(tmp_path, brain, name='Bad', **kwargs)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_case(folder)


def test_missing_seg_and_label_checks(tmp_path, brain):
    folder = make_case(tmp_path, brain, name='NoSeg')
    (folder / 'NoSeg_seg.nii.gz').unlink()
    with pytest.raises(FileNotFoundError, match='NoSeg: missing seg'):
        load_case(folder)
    assert 'gt_seg' not in load_case(folder, with_seg=False)
    with pytest.raises(ValueError, match='case X: the label map holds non-integer'):
        check_labels(np.array([0.5]), 'X')
    assert case_name_of('a/BraTS20_Training_001_seg.nii.gz') == 'BraTS20_Training_001'
    assert case_name_of('BraTS-GLI-00000-000-t2f.nii.gz') == 'BraTS-GLI-00000-000'


def test_zscore_in_mask():
    volume = np.zeros((2, 4, 4, 4), np.float32)
    volume[0, 1:3, 1:3, 1:3] = np.arange(8).reshape(2, 2, 2)
    volume[1, 1:3, 1:3, 1:3] = 5.0  # constant channel: zero after centring, no division by 0
    out = zscore_in_mask(volume)
    mask = np.any(volume != 0, axis=0)
    assert mask.sum() == 8  # the voxel where channel 0 is 0 is inside: channel 1 is not 0 there
    values = np.arange(8, dtype=np.float32)
    assert np.allclose(out[0][mask], (values - values.mean()) / values.std())
    assert np.all(out[:, ~mask] == 0)
    assert np.all(out[1] == 0)


def test_synthetic_cases_have_nested_regions():
    case = make_synthetic_case((24, 24, 24), seed=3)
    seg = case['gt_seg']
    assert set(np.unique(seg)) == {0, 1, 2, 4} and case['img'].shape == (4, 24, 24, 24)
    flair = case['img'][3]
    assert flair[seg > 0].mean() > flair[(seg == 0) & (flair != 0)].mean() + 1  # tumour bright on FLAIR
    assert len(SyntheticBraTS(2, (16, 16, 16))) == 2


def test_patch_sampling_foreground_ratio_and_padding():
    case = make_synthetic_case((32, 32, 32), seed=1)
    np.random.seed(0)
    patch = RandomVolumePatch(8, fg_ratio=1.0)
    hits = 0
    for _ in range(20):
        out = patch(dict(case, meta=dict(case['meta'])))
        assert out['img'].shape == (4, 8, 8, 8) and out['gt_seg'].shape == (8, 8, 8)
        o = out['meta']['patch_origin']
        assert np.array_equal(out['gt_seg'], case['gt_seg'][o[0]:o[0] + 8, o[1]:o[1] + 8, o[2]:o[2] + 8])
        hits += bool((out['gt_seg'] > 0).any())
    assert hits == 20
    background = sum(bool((RandomVolumePatch(4, fg_ratio=0.0)(dict(case))['gt_seg'] > 0).any()) for _ in range(20))
    assert background < 10
    small = RandomVolumePatch((40, 8, 8), fg_ratio=0.0)(dict(case))
    assert small['img'].shape == (4, 40, 8, 8) and np.all(small['img'][:, 32:] == 0)


def test_flip_keeps_image_and_labels_aligned():
    case = make_synthetic_case((16, 16, 16), seed=2)
    np.random.seed(1)
    out = RandomVolumeFlip(prob=1.0, axes=(0, 2))(dict(case))
    assert np.array_equal(out['img'], case['img'][:, ::-1, :, ::-1])
    assert np.array_equal(out['gt_seg'], case['gt_seg'][::-1, :, ::-1])


def test_intensity_shift_scale_inside_the_brain_only():
    case = make_synthetic_case((16, 16, 16), seed=2)
    original = case['img'].copy()
    np.random.seed(2)
    out = RandomIntensityShiftScale(shift=0.1, scale=0.1)(dict(case))
    mask = np.any(original != 0, axis=0)
    assert np.array_equal(case['img'], original)  # the cached input is untouched
    for c in range(4):
        a, b = np.polyfit(original[c][mask], out['img'][c][mask], 1)
        assert 0.9 <= a <= 1.1 and -0.1 <= b <= 0.1 and not np.isclose(a, 1.0)
    assert np.all(out['img'][:, ~mask] == 0)
