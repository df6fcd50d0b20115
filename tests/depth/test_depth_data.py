"""NYU Depth v2 readers (both layouts, bad files) and the FastDepth transforms (sizes, alignment, depth / s)."""
import cv2
import h5py
import numpy as np
import pytest
from scipy.io import savemat

from data import DATASETS, TRANSFORMS
from data.datasets.nyu import NYUDepthV2, read_nyu_h5
from data.io import read_rgb


@pytest.fixture
def nyu_frame(assets):
    """The real NYU frame brought back to the 480x640 of the raw data."""
    rgb = read_rgb(assets / 'depth' / 'rgb.png')
    depth = np.load(assets / 'depth' / 'depth.npy')
    return (cv2.resize(rgb, (640, 480), interpolation=cv2.INTER_LINEAR),
            cv2.resize(depth, (640, 480), interpolation=cv2.INTER_NEAREST))


def write_h5(path, rgb_chw, depth):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, 'w') as f:
        if rgb_chw is not None:
            f['rgb'] = rgb_chw
        if depth is not None:
            f['depth'] = depth


def test_h5_layout_reads_the_sparse_to_dense_files(tmp_path, nyu_frame):
    rgb, depth = nyu_frame
    write_h5(tmp_path / 'train' / 'kitchen_0001' / '00001.h5', rgb.transpose(2, 0, 1), depth)
    write_h5(tmp_path / 'train' / 'office_0002' / '00007.h5', rgb.transpose(2, 0, 1), depth * 0.5)
    write_h5(tmp_path / 'val' / 'official' / '00001.h5', rgb.transpose(2, 0, 1), depth)
    train = DATASETS.build(dict(type='NYUDepthV2', data_root=str(tmp_path), split='train'))
    assert len(train) == 2 and train.layout == 'h5'
    sample = train[1]
    assert sample['img'].shape == (480, 640, 3) and sample['img'].dtype == np.uint8
    np.testing.assert_array_equal(sample['img'], rgb)
    np.testing.assert_allclose(sample['gt_depth'], depth * 0.5)
    assert sample['gt_depth'].dtype == np.float32
    assert sample['meta']['img_id'] == 'train_office_0002_00007'
    assert sample['meta']['ori_shape'] == (480, 640)
    val = NYUDepthV2(str(tmp_path), split='val', pipeline=[dict(type='FastDepthResizeCrop')])
    out = val[0]
    assert out['img'].shape == (224, 224, 3) and out['gt_depth'].shape == (224, 224)
    assert out['meta']['ori_shape'] == (480, 640) and out['meta']['img_shape'] == (224, 224)


def test_h5_bad_files_are_named(tmp_path, nyu_frame):
    rgb, depth = nyu_frame
    chw = rgb.transpose(2, 0, 1)
    cases = {'no_depth.h5': (chw, None), 'hwc.h5': (rgb, depth), 'small_depth.h5': (chw, depth[:100]),
             'all_invalid.h5': (chw, np.zeros_like(depth)), 'nan.h5': (chw, np.full_like(depth, np.nan))}
    messages = {'no_depth.h5': r"missing key\(s\) \['depth'\]", 'hwc.h5': 'expected 3xHxW',
                'small_depth.h5': 'expected \\(480, 640\\)', 'all_invalid.h5': 'no valid pixel',
                'nan.h5': 'no valid pixel'}
    for name, (a, b) in cases.items():
        write_h5(tmp_path / name, a, b)
        with pytest.raises(ValueError, match=messages[name]) as err:
            read_nyu_h5(tmp_path / name)
        assert name in str(err.value)
    (tmp_path / 'not_h5.h5').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='not_h5.h5: cannot open'):
        read_nyu_h5(tmp_path / 'not_h5.h5')
    with pytest.raises(FileNotFoundError, match='val'):
        NYUDepthV2(str(tmp_path / 'nowhere'), split='val', layout='h5')


def make_labeled_mat(root, frames, depths):
    """A MATLAB v7.3 (HDF5) file laid out like nyu_depth_v2_labeled.mat: N x 3 x W x H and N x W x H."""
    with h5py.File(root / 'nyu_depth_v2_labeled.mat', 'w') as f:
        f['images'] = np.stack([im.transpose(2, 1, 0) for im in frames])
        f['depths'] = np.stack([d.T for d in depths])


def test_mat_layout_with_the_official_split(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(4)]
    depths = [rng.uniform(0.5, 9.0, (12, 16)).astype(np.float32) for _ in range(4)]
    make_labeled_mat(tmp_path, frames, depths)
    savemat(tmp_path / 'splits.mat', dict(trainNdxs=np.array([[1], [3], [4]]), testNdxs=np.array([[2]])))
    train = NYUDepthV2(str(tmp_path), split='train')
    assert train.layout == 'mat' and len(train) == 3
    sample = train[1]                       # frame number 3 (1-based) = index 2
    np.testing.assert_array_equal(sample['img'], frames[2])   # H x W x 3, not transposed
    np.testing.assert_array_equal(sample['gt_depth'], depths[2])
    assert sample['meta']['img_id'] == '0003'
    test = NYUDepthV2(str(tmp_path), split='test')
    assert len(test) == 1
    np.testing.assert_array_equal(test[0]['img'], frames[1])
    savemat(tmp_path / 'bad_splits.mat', dict(trainNdxs=np.array([[9]]), testNdxs=np.array([[2]])))
    with pytest.raises(ValueError, match='bad_splits.mat: frame numbers \\[9\\] exceed the 4 frames'):
        NYUDepthV2(str(tmp_path), split='train', splits_file='bad_splits.mat')
    savemat(tmp_path / 'no_test.mat', dict(trainNdxs=np.array([[1]])))
    with pytest.raises(ValueError, match="no_test.mat: missing key 'testNdxs'"):
        NYUDepthV2(str(tmp_path), split='test', splits_file='no_test.mat')
    depths[0][:] = 0
    make_labeled_mat(tmp_path, frames, depths)
    with pytest.raises(ValueError, match='labeled.mat frame 1: the depth map has no valid pixel'):
        NYUDepthV2(str(tmp_path), split='train')[0]
    with h5py.File(tmp_path / 'nyu_depth_v2_labeled.mat', 'w') as f:
        f['images'] = np.zeros((2, 3, 16, 12), np.uint8)
    with pytest.raises(ValueError, match=r"labeled.mat: missing key\(s\) \['depths'\]"):
        NYUDepthV2(str(tmp_path), split='train')


def test_fastdepth_eval_transform_geometry(nyu_frame):
    rgb, depth = nyu_frame
    out = TRANSFORMS.build(dict(type='FastDepthResizeCrop'))(dict(img=rgb, gt_depth=depth, meta=dict(file='f')))
    assert out['img'].shape == (224, 224, 3) and out['gt_depth'].shape == (224, 224)
    # 480x640 x 250/480 = 250x333; centre crop 228x304 starts at (11, 14) -> original pixels / (250/480)
    scale = 250 / 480
    assert out['meta']['crop_box'] == pytest.approx((14 / scale, 11 / scale, 318 / scale, 239 / scale))
    expected = cv2.resize(cv2.resize(depth, (333, 250), interpolation=cv2.INTER_NEAREST)[11:239, 14:318],
                          (224, 224), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(out['gt_depth'], expected)
    with pytest.raises(ValueError, match='tiny.png: a 100x100 frame'):
        TRANSFORMS.build(dict(type='FastDepthResizeCrop'))(
            dict(img=rgb[:100, :100], gt_depth=depth[:100, :100], meta=dict(file='tiny.png')))
    with pytest.raises(ValueError, match='odd.png: depth map'):
        TRANSFORMS.build(dict(type='FastDepthResizeCrop'))(
            dict(img=rgb, gt_depth=depth[:10], meta=dict(file='odd.png')))


def blocks_scene():
    """Blocks of 40x40 pixels: red channel = 20 x label, depth = label metres (so depth can be read off)."""
    labels = (np.arange(12 * 16).reshape(12, 16) % 11 + 1).repeat(40, 0).repeat(40, 1)
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0] = labels * 20
    return image, labels.astype(np.float32)


def test_fastdepth_augment_keeps_depth_aligned_and_divides_by_scale():
    image, depth = blocks_scene()
    augment = TRANSFORMS.build(dict(type='FastDepthAugment', jitter=0.0, seed=3))
    flips = set()
    for _ in range(6):
        out = augment(dict(img=image.copy(), gt_depth=depth.copy(), meta=dict(file='blocks')))
        meta = out['meta']
        s = meta['depth_scale']
        assert 1.0 <= s <= 1.5 and abs(meta['rotation']) <= 5.0
        flips.add(meta['flip'])
        assert out['img'].shape == (224, 224, 3) and out['gt_depth'].shape == (224, 224)
        valid = out['gt_depth'] > 0
        assert valid.mean() > 0.8
        label_from_image = out['img'][..., 0].astype(np.float64) / 20
        label_from_depth = out['gt_depth'].astype(np.float64) * s        # depth was divided by s
        # inside the blocks (away from edges the bilinear image blends) the labels must agree
        kernel = np.ones((5, 5), np.uint8)
        interior = valid & (cv2.erode(label_from_depth, kernel) == cv2.dilate(label_from_depth, kernel))
        assert interior.mean() > 0.5
        agree = np.abs(label_from_image - label_from_depth)[interior] < 0.26
        assert agree.mean() > 0.98, f'image and depth disagree on {1 - agree.mean():.1%} of the block interiors'
        # depth values are labels / s exactly (nearest resampling: no mixing of neighbouring depths)
        np.testing.assert_allclose(np.unique(label_from_depth[valid]), np.unique(np.round(label_from_depth[valid])),
                                   atol=1e-4)
    assert flips == {True, False}


def test_augment_colour_jitter_changes_only_the_image():
    image, depth = blocks_scene()
    image[..., 1] = 90
    plain = TRANSFORMS.build(dict(type='FastDepthAugment', jitter=0.0, seed=5))(
        dict(img=image.copy(), gt_depth=depth.copy(), meta={}))
    jittered = TRANSFORMS.build(dict(type='FastDepthAugment', jitter=0.4, seed=5))(
        dict(img=image.copy(), gt_depth=depth.copy(), meta={}))
    np.testing.assert_array_equal(plain['gt_depth'], jittered['gt_depth'])
    assert np.abs(plain['img'].astype(int) - jittered['img'].astype(int)).mean() > 1.0
