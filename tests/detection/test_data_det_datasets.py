"""Detection datasets: COCO / VOC / YOLO loading on the real coco8 and VOC samples, and clear errors on bad input."""
import json
import logging
import shutil

import cv2
import numpy as np
import pytest
from mmengine.dataset import ConcatDataset

from data import DATASETS
from data.datasets import CocoDetection, VOCDetection, YOLODetection, validate_boxes
from data.datasets.voc import VOC_CLASSES


@pytest.fixture
def coco8(assets):
    return assets / 'detection' / 'coco8'


@pytest.fixture
def devkit(assets):
    return assets / 'detection' / 'VOCdevkit'


def _check_sample(sample):
    img = sample['img']
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert sample['gt_bboxes'].dtype == np.float32 and sample['gt_bboxes'].shape[1] == 4
    assert sample['gt_labels'].dtype == np.int64 and sample['gt_ignore_flags'].dtype == bool
    assert len(sample['gt_bboxes']) == len(sample['gt_labels']) == len(sample['gt_ignore_flags'])
    h, w = img.shape[:2]
    assert sample['meta']['ori_shape'] == (h, w)
    boxes = sample['gt_bboxes']
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 3] <= h).all() and (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def test_coco_loads_coco8_with_category_mapping(coco8):
    ds = CocoDetection(str(coco8 / 'instances_val.json'), str(coco8 / 'images' / 'val'))
    gt = json.loads((coco8 / 'instances_val.json').read_text())
    assert len(ds) == 4
    assert ds.metainfo['cat_ids'] == sorted(c['id'] for c in gt['categories'])
    assert ds.metainfo['classes'][0] == 'person' and len(ds.metainfo['classes']) == 80
    sample = ds[0]
    _check_sample(sample)
    assert sample['meta']['img_id'] == 36 and sample['meta']['file'].endswith('000000000036.jpg')
    anns = [a for a in gt['annotations'] if a['image_id'] == 36]
    x, y, w, h = anns[0]['bbox']
    np.testing.assert_allclose(sample['gt_bboxes'][0], [x, y, x + w, y + h], rtol=1e-6)
    # label -> category id -> name round trip
    cat_name = {c['id']: c['name'] for c in gt['categories']}
    for label, ann in zip(sample['gt_labels'], anns):
        assert ds.metainfo['cat_ids'][label] == ann['category_id']
        assert ds.metainfo['classes'][label] == cat_name[ann['category_id']]


def test_yolo_coco8_matches_coco_json(coco8):
    """The YOLO labels and the COCO json of coco8 describe the same boxes (80-class order = sorted COCO ids)."""
    coco = CocoDetection(str(coco8 / 'instances_train.json'), str(coco8 / 'images' / 'train'))
    yolo = YOLODetection(data_yaml=str(coco8 / 'coco8.yaml'), split='train')
    yolo_list = YOLODetection(str(coco8), 'train', classes=coco.metainfo['classes'])
    assert yolo.metainfo['classes'] == coco.metainfo['classes'] == yolo_list.metainfo['classes']
    assert len(yolo) == len(coco) == 4
    for i in range(4):
        a, b = coco[i], yolo[i]
        _check_sample(b)
        assert b['meta']['img_id'] == a['meta']['file'].rsplit('/', 1)[-1][:-4]
        np.testing.assert_array_equal(a['gt_labels'], b['gt_labels'])
        np.testing.assert_allclose(a['gt_bboxes'], b['gt_bboxes'], atol=0.05)


def test_voc_years_and_concat(devkit):
    ds07 = VOCDetection(str(devkit), 2007, 'trainval')
    s = ds07[0]
    _check_sample(s)
    assert s['meta']['img_id'] == '000001'
    # XML: dog (48, 240, 195, 371), person (8, 12, 352, 498), 1-based inclusive -> continuous
    np.testing.assert_array_equal(s['gt_bboxes'], [[47, 239, 195, 371], [7, 11, 352, 498]])
    assert [VOC_CLASSES[i] for i in s['gt_labels']] == ['dog', 'person']
    assert not s['gt_ignore_flags'].any()
    both = VOCDetection(str(devkit), years=[2007, 2012], split='trainval')
    concat = ConcatDataset([ds07, dict(type='mobilevision.VOCDetection', data_root=str(devkit), year=2012,
                                       split='trainval')])
    assert len(both) == len(concat) == 2
    assert concat.metainfo['classes'] == list(VOC_CLASSES)
    for i in range(2):
        np.testing.assert_array_equal(both[i]['gt_bboxes'], concat[i]['gt_bboxes'])
    assert [VOC_CLASSES[i] for i in both[1]['gt_labels']] == ['train']


def test_voc_difficult_is_ignore_flag_and_bad_class(devkit, tmp_path):
    root = tmp_path / 'VOCdevkit'
    shutil.copytree(devkit / 'VOC2007', root / 'VOC2007')
    xml = root / 'VOC2007' / 'Annotations' / '000001.xml'
    text = xml.read_text()
    xml.write_text(text.replace('<difficult>0</difficult>', '<difficult>1</difficult>', 1))
    s = VOCDetection(str(root), 2007, 'test')[0]
    assert s['gt_ignore_flags'].tolist() == [True, False]
    xml.write_text(text.replace('<name>person</name>', '<name>unicorn</name>'))
    with pytest.raises(ValueError, match=r'000001\.xml: object 2 has class .unicorn.'):
        VOCDetection(str(root), 2007, 'test')
    with pytest.raises(FileNotFoundError, match=r'ImageSets/Main/val\.txt'):
        VOCDetection(str(root), 2007, 'val')


def _write_coco(tmp_path, annotations, size=(60, 80), categories=((1, 'cat'), (5, 'dog'))):
    img_dir = tmp_path / 'images'
    img_dir.mkdir(exist_ok=True)
    cv2.imwrite(str(img_dir / 'a.png'), np.full((size[0], size[1], 3), 90, np.uint8))
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(dict(
        images=[dict(id=7, file_name='a.png', height=size[0], width=size[1])],
        annotations=[{**dict(id=i + 1, image_id=7, area=1.0, iscrowd=0), **a} for i, a in enumerate(annotations)],
        categories=[dict(id=c, name=n) for c, n in categories])))
    return str(ann_file), str(img_dir)


def test_coco_crowd_outside_and_degenerate_boxes(tmp_path, caplog):
    ann_file, img_dir = _write_coco(tmp_path, [
        dict(category_id=5, bbox=[10, 10, 20, 20]),             # kept as is
        dict(category_id=1, bbox=[-5, 50, 20, 30]),             # outside: clipped to (0, 50, 15, 60)
        dict(category_id=1, bbox=[30, 30, 0, 10]),              # zero width: dropped
        dict(category_id=1, bbox=[100, 10, 5, 5]),              # entirely right of the image: dropped
        dict(category_id=5, bbox=[40, 5, 10, 10], iscrowd=1),   # crowd: ignore flag
    ])
    with caplog.at_level(logging.WARNING, logger='mobilevision.data'):
        ds = CocoDetection(ann_file, img_dir)
    assert ds.box_report['clipped'] == 1 and ds.box_report['dropped'] == 2
    assert any('a.png' in r.getMessage() and 'dropped 2 box' in r.getMessage() for r in caplog.records)
    s = ds[0]
    np.testing.assert_allclose(s['gt_bboxes'], [[10, 10, 30, 30], [0, 50, 15, 60], [40, 5, 50, 15]])
    assert s['gt_labels'].tolist() == [1, 0, 1]          # cat id 1 -> 0, dog id 5 -> 1
    assert s['gt_ignore_flags'].tolist() == [False, False, True]
    assert ds.metainfo == dict(classes=['cat', 'dog'], cat_ids=[1, 5])


def test_coco_bad_category_and_unreadable_image(tmp_path):
    ann_file, img_dir = _write_coco(tmp_path, [dict(category_id=3, bbox=[1, 1, 5, 5])])
    with pytest.raises(ValueError, match=r'ann\.json: annotation id 1 has category_id 3'):
        CocoDetection(ann_file, img_dir)
    ann_file, img_dir = _write_coco(tmp_path, [dict(category_id=1, bbox=[1, 1, 5, 5])])
    (tmp_path / 'images' / 'a.png').write_bytes(b'not an image at all')
    ds = CocoDetection(ann_file, img_dir)
    with pytest.raises(ValueError, match=r'cannot decode image .*a\.png'):
        ds[0]
    (tmp_path / 'images' / 'a.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'a\.png does not exist'):
        ds[0]
    with pytest.raises(FileNotFoundError, match='missing.json'):
        CocoDetection(str(tmp_path / 'missing.json'), img_dir)


def test_coco_size_mismatch_and_filter_empty(tmp_path):
    ann_file, img_dir = _write_coco(tmp_path, [], size=(60, 80))
    assert len(CocoDetection(ann_file, img_dir)) == 1
    with pytest.raises(ValueError, match=r'ann\.json.*none of the 1 images has a box'):
        CocoDetection(ann_file, img_dir, filter_empty_gt=True)
    cv2.imwrite(str(tmp_path / 'images' / 'a.png'), np.zeros((30, 80, 3), np.uint8))
    with pytest.raises(ValueError, match=r'a\.png: image is 30x80 .* annotation says 60x80'):
        CocoDetection(ann_file, img_dir)[0]


def _yolo_tree(tmp_path, lines, name='img'):
    (tmp_path / 'images' / 'train').mkdir(parents=True, exist_ok=True)
    (tmp_path / 'labels' / 'train').mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(tmp_path / 'images' / 'train' / f'{name}.jpg'), np.full((50, 100, 3), 128, np.uint8))
    if lines is not None:
        (tmp_path / 'labels' / 'train' / f'{name}.txt').write_text('\n'.join(lines) + '\n')
    return str(tmp_path)


def test_yolo_boxes_and_clipping(tmp_path):
    root = _yolo_tree(tmp_path, ['1 0.5 0.5 0.2 0.4', '0 0.95 0.5 0.2 0.2', '0 0.3 0.3 0 0.1', ''])
    ds = YOLODetection(root, 'train', classes=['a', 'b'])
    s = ds[0]
    # (cx, cy, w, h) * (100, 50): (40, 15, 60, 35); the second box reaches x = 105 and is clipped to 100
    np.testing.assert_allclose(s['gt_bboxes'], [[40, 15, 60, 35], [85, 45 / 2 - 5 + 2.5, 100, 30]], atol=1e-4)
    assert s['gt_labels'].tolist() == [1, 0]
    assert ds.box_report == dict(clipped=1, dropped=1, files={str(tmp_path / 'labels/train/img.txt'):
                                                             dict(clipped=1, dropped=1)})


def test_yolo_class_out_of_range_names_file_and_line(tmp_path):
    root = _yolo_tree(tmp_path, ['0 0.5 0.5 0.2 0.2', '2 0.5 0.5 0.2 0.2'])
    with pytest.raises(ValueError, match=r'labels/train/img\.txt: line 2: class id 2 is out of range 0\.\.1'):
        YOLODetection(root, 'train', classes=['a', 'b'])
    (tmp_path / 'labels' / 'train' / 'img.txt').write_text('0 0.5 0.5 0.2\n')
    with pytest.raises(ValueError, match=r'img\.txt: line 1: expected "class cx cy w h"'):
        YOLODetection(root, 'train', classes=['a', 'b'])


def test_yolo_missing_label_file(tmp_path):
    root = _yolo_tree(tmp_path, None)
    with pytest.raises(FileNotFoundError, match=r'label file .*labels/train/img\.txt .* does not exist'):
        YOLODetection(root, 'train', classes=['a'])
    s = YOLODetection(root, 'train', classes=['a'], allow_missing_labels=True)[0]
    assert s['gt_bboxes'].shape == (0, 4) and s['gt_labels'].shape == (0,)


def test_yolo_unreadable_image(tmp_path):
    root = _yolo_tree(tmp_path, [])
    (tmp_path / 'images' / 'train' / 'img.jpg').write_bytes(b'\x00' * 10)
    with pytest.raises(ValueError, match=r'cannot read image .*img\.jpg'):
        YOLODetection(root, 'train', classes=['a'])


def test_validate_boxes_rules():
    boxes = np.array([[-1, -1, 5, 5], [2, 2, 2, 8], [1, 1, 3, 3]], np.float32)
    out, labels, flags, clipped, dropped = validate_boxes(boxes, [0, 1, 2], [False, True, False], 3, 4, 4, 'f.txt')
    np.testing.assert_array_equal(out, [[0, 0, 4, 4], [1, 1, 3, 3]])
    assert labels.tolist() == [0, 2] and flags.tolist() == [False, False] and (clipped, dropped) == (1, 1)
    with pytest.raises(ValueError, match=r'f\.txt: line 7: class id -1'):
        validate_boxes(boxes[:1], [-1], [False], 3, 4, 4, 'f.txt', ['line 7'])
    with pytest.raises(ValueError, match='non-finite'):
        validate_boxes(np.array([[0, 0, np.nan, 1]]), [0], [False], 3, 4, 4, 'f.txt')


def test_built_from_config_with_pipeline(coco8):
    ds = DATASETS.build(dict(type='CocoDetection', ann_file=str(coco8 / 'instances_val.json'),
                             img_dir=str(coco8 / 'images' / 'val'),
                             pipeline=[dict(type='Albumentations', transforms=[dict(type='Resize', height=64,
                                                                                    width=96)])]))
    s = ds[1]
    assert s['img'].shape == (64, 96, 3) and s['meta']['img_shape'] == (64, 96)
    assert s['meta']['ori_shape'] == (478, 640)
    assert ds.get_cat_ids(1) == sorted(set(s['gt_labels'].tolist()))
