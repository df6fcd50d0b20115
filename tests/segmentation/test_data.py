"""Segmentation data: VOC + SBD train_aug, Cityscapes ids, COCO-to-VOC masks, bad masks, aligned transforms."""
import json
import os

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from data.datasets import CityscapesSegmentation, CocoVOCSegmentation, VOCSegmentation
from data.io import write_rgb
from data.transforms.segmentation import IMAGENET_MEAN_RGB, SegTestResize, SegTrainAugment
from data.visualization.masks import write_label_png

from seg_testutils import write_voc_tree


def _mask(seed, shape=(24, 32), classes=21):
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, classes, shape)
    mask[0, :3] = 255
    return mask


@pytest.fixture
def voc(tmp_path):
    """VOC with train a,b / val c (masks for all), SBD with train b,d / val c,e (.mat class maps)."""
    root, sbd = tmp_path / 'VOC2012', tmp_path / 'sbd'
    ids = ['a', 'b', 'c', 'd', 'e']
    images = {i: np.full((24, 32, 3), 10 * k, np.uint8) for k, i in enumerate(ids)}
    write_voc_tree(str(root), {i: images[i] for i in 'abc'}, {i: _mask(k) for k, i in enumerate('abc')},
                   {'train': ['a', 'b'], 'val': ['c']})
    for name in ('img', 'cls'):
        os.makedirs(sbd / name)
    for k, i in enumerate(ids):
        write_rgb(str(sbd / 'img' / f'{i}.jpg'), images[i])
        savemat(str(sbd / 'cls' / f'{i}.mat'),
                {'GTcls': {'Segmentation': _mask(100 + k).clip(0, 20).astype(np.uint8),
                           'Boundaries': np.zeros((1, 1)), 'CategoriesPresent': np.arange(3)}})
    (sbd / 'train.txt').write_text('b\nd\n')
    (sbd / 'val.txt').write_text('c\ne\n')
    return root, sbd


def test_voc_split_reads_palette_indices(voc):
    root, _ = voc
    ds = VOCSegmentation(str(root), split='train')
    assert len(ds) == 2
    sample = ds[1]
    assert sample['img'].shape == (24, 32, 3) and sample['img'].dtype == np.uint8
    assert sample['gt_seg'].dtype == np.int64
    np.testing.assert_array_equal(sample['gt_seg'], _mask(1))  # indices, not palette colours
    assert sample['meta']['img_id'] == 'b' and sample['meta']['ori_shape'] == (24, 32)


def test_train_aug_is_voc_train_plus_sbd_minus_voc_val(voc):
    root, sbd = voc
    ds = VOCSegmentation(str(root), split='train_aug', sbd_root=str(sbd))
    assert [r[0] for r in ds.records] == ['a', 'b', 'd', 'e']  # c is in VOC val
    assert ds.split_counts() == dict(png=2, mat=2)            # VOC masks win where VOC has them
    by_id = {r[0]: k for k, r in enumerate(ds.records)}
    np.testing.assert_array_equal(ds[by_id['b']]['gt_seg'], _mask(1))
    np.testing.assert_array_equal(ds[by_id['d']]['gt_seg'], _mask(103).clip(0, 20))
    assert ds[by_id['e']]['meta']['file'].endswith(os.path.join('sbd', 'img', 'e.jpg'))


def test_bad_masks_are_reported_with_the_file(voc):
    root, _ = voc
    write_label_png(str(root / 'SegmentationClass' / 'a.png'), np.zeros((10, 10), np.int64))
    with pytest.raises(ValueError, match=r'SegmentationClass.a\.png.*differs from its image'):
        VOCSegmentation(str(root), split='train')[0]
    bad = np.zeros((24, 32), np.int64)
    bad[3, 3] = 42
    write_label_png(str(root / 'SegmentationClass' / 'a.png'), bad)
    with pytest.raises(ValueError, match=r'a\.png: labels \[42\] are outside'):
        VOCSegmentation(str(root), split='train')[0]


def test_cityscapes_label_ids_become_train_ids(tmp_path):
    img_dir, gt_dir = tmp_path / 'leftImg8bit' / 'val' / 'ulm', tmp_path / 'gtFine' / 'val' / 'ulm'
    os.makedirs(img_dir)
    os.makedirs(gt_dir)
    write_rgb(str(img_dir / 'ulm_000000_000019_leftImg8bit.png'), np.zeros((2, 3, 3), np.uint8))
    ids = np.array([[7, 26, 0], [33, 4, 24]])
    write_label_png(str(gt_dir / 'ulm_000000_000019_gtFine_labelIds.png'), ids)
    sample = CityscapesSegmentation(str(tmp_path), split='val')[0]
    np.testing.assert_array_equal(sample['gt_seg'], [[0, 13, 255], [18, 255, 11]])


def _rect(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def test_coco_to_voc_masks(tmp_path):
    write_rgb(str(tmp_path / '1.jpg'), np.zeros((64, 64, 3), np.uint8))
    write_rgb(str(tmp_path / '2.jpg'), np.zeros((64, 64, 3), np.uint8))
    anns = [dict(id=1, image_id=1, category_id=1, segmentation=_rect(0, 0, 40, 40), area=1600, bbox=[0, 0, 40, 40],
                 iscrowd=0),                               # person -> 15
            dict(id=2, image_id=1, category_id=18, segmentation=_rect(30, 30, 34, 34), area=1156,
                 bbox=[30, 30, 34, 34], iscrowd=0),        # dog -> 12, overlaps the person
            dict(id=3, image_id=1, category_id=47, segmentation=_rect(50, 0, 10, 10), area=100, bbox=[50, 0, 10, 10],
                 iscrowd=0),                               # cup: not a VOC class
            dict(id=4, image_id=2, category_id=47, segmentation=_rect(0, 0, 60, 60), area=3600,
                 bbox=[0, 0, 60, 60], iscrowd=0)]
    cats = [dict(id=c, name=str(c)) for c in (1, 18, 47)]
    images = [dict(id=i, file_name=f'{i}.jpg', height=64, width=64) for i in (1, 2)]
    (tmp_path / 'ann.json').write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    train = CocoVOCSegmentation(str(tmp_path / 'ann.json'), str(tmp_path))
    assert len(train) == 1  # image 2 has no VOC-class annotation
    assert len(CocoVOCSegmentation(str(tmp_path / 'ann.json'), str(tmp_path), test_mode=True)) == 2
    seg = train[0]['gt_seg']
    assert seg[5, 5] == 15 and seg[50, 50] == 12 and seg[35, 35] == 255 and seg[5, 55] == 0
    assert set(np.unique(seg)) == {0, 12, 15, 255}


def _coded_sample(rng):
    seg = rng.integers(0, 21, (60, 80))
    colors = (np.arange(256)[:, None] * np.array([1, 7, 13]) + 20) % 256
    return colors, dict(img=colors[seg].astype(np.uint8), gt_seg=seg, meta=dict(file='x.jpg'))


def test_train_augment_keeps_image_and_mask_aligned():
    rng = np.random.default_rng(0)
    colors, _ = _coded_sample(rng)
    augment = SegTrainAugment(crop_size=(64, 96), photometric=0, interpolation=cv2.INTER_NEAREST)
    flips = 0
    for _ in range(6):
        _, sample = _coded_sample(rng)
        before = sample['img'].copy()
        out = augment(sample)
        img, seg = out['img'], out['gt_seg']
        assert img.shape == (64, 96, 3) and seg.shape == (64, 96) and seg.dtype == np.int64
        assert out['meta']['img_shape'] == (64, 96)
        valid = seg != 255
        np.testing.assert_array_equal(img[valid], colors[seg[valid]])
        flips += int(not np.array_equal(before[:1, :1], img[:1, :1]))
    # forced down-scaling: the crop is padded, image with the mean colour, mask with 255
    pad = SegTrainAugment(crop_size=(64, 96), scale_range=(0.5, 0.5), flip_prob=0, photometric=0)
    out = pad(_coded_sample(rng)[1])
    assert (out['gt_seg'][30:, :] == 255).all() and (out['gt_seg'][:, 40:] == 255).all()
    np.testing.assert_allclose(out['img'][40, 50], np.round(IMAGENET_MEAN_RGB), atol=1)
    with pytest.raises(ValueError, match='x.jpg.*mask size'):
        augment(dict(img=np.zeros((10, 10, 3), np.uint8), gt_seg=np.zeros((5, 5)), meta=dict(file='x.jpg')))


def test_test_resize_keeps_the_original_mask():
    sample = dict(img=np.zeros((100, 200, 3), np.uint8), gt_seg=np.zeros((100, 200), np.int64),
                  meta=dict(ori_shape=(100, 200)))
    out = SegTestResize(short_side=52)(sample)
    assert out['img'].shape == (52, 104, 3) and out['gt_seg'].shape == (100, 200)
    assert out['meta']['img_shape'] == (52, 104) and out['meta']['ori_shape'] == (100, 200)
