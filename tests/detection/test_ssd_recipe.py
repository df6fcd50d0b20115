"""The SSD recipes as published: the paper's minimum-IoU crop and the TF SSDLite-MobileNetV2 default boxes.

The crop is checked on the real coco8 boxes (images with >= 5 objects, where mmdet's "every object" rule almost
never finds a patch) against torchvision's ``RandomIoUCrop``; box consistency is checked on images that encode
each pixel's own position, so the pixel under every output position tells where it came from.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from data.transforms.detection import SSDMinIoURandomCrop, box_iou_np
from tasks import build_model, load_config
from tasks.detection.anchors import DefaultBoxGenerator
from tasks.profiling import count_macs, count_parameters

REPO = Path(__file__).resolve().parents[2]
COCO8 = REPO / 'tests' / 'assets' / 'detection' / 'coco8'


def crowded_coco8_images(min_boxes: int = 5):
    """(height, width, xyxy boxes) of the coco8 images with at least ``min_boxes`` objects."""
    out = []
    for split in ('train', 'val'):
        data = json.loads((COCO8 / f'instances_{split}.json').read_text())
        for image in data['images']:
            boxes = [a['bbox'] for a in data['annotations'] if a['image_id'] == image['id']]
            if len(boxes) >= min_boxes:
                xyxy = np.array(boxes, np.float32)
                xyxy[:, 2:] += xyxy[:, :2]
                out.append((image['height'], image['width'], xyxy))
    return out


def position_image(h: int, w: int) -> np.ndarray:
    """R = x mod 256, G = y mod 256, B = 16 (x div 256) + (y div 256): every pixel names its position."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs % 256, ys % 256, (xs // 256) * 16 + ys // 256], axis=-1).astype(np.uint8)


def source_position(img: np.ndarray, y: int, x: int):
    r, g, b = (int(v) for v in img[y, x])
    return (b // 16) * 256 + r, (b % 16) * 256 + g


@pytest.mark.slow
def test_coco8_crowded_images_are_cropped_like_torchvision():
    """>= 60% of draws change the image (mmdet's all-boxes rule: almost none); rates close to torchvision's."""
    images = crowded_coco8_images()
    assert len(images) == 3 and min(len(b) for _, _, b in images) >= 5
    np.random.seed(0)
    torch.manual_seed(0)
    draws, strict_draws = 100, 20
    totals = {'paper': 0, 'torchvision': 0}
    paper, strict = SSDMinIoURandomCrop(), SSDMinIoURandomCrop(min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), iou_rule='all')
    tv_crop = v2.RandomIoUCrop()
    for h, w, boxes in images:
        img = position_image(h, w)
        changed = {'paper': 0, 'strict': 0, 'torchvision': 0}
        for i in range(draws):
            for name, t in (('paper', paper), ('strict', strict)):
                if name == 'strict' and i >= strict_draws:
                    continue
                out = t(dict(img=img, gt_bboxes=boxes.copy(), gt_labels=np.arange(len(boxes))))
                changed[name] += out['img'].shape != img.shape or not np.array_equal(out['img'], img)
            tv_img = tv_tensors.Image(torch.zeros(1, h, w, dtype=torch.uint8))
            tv_boxes = tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format='XYXY', canvas_size=(h, w))
            tv_out, _ = tv_crop(tv_img, tv_boxes)
            changed['torchvision'] += tuple(tv_out.shape[-2:]) != (h, w)
        rates = {k: v / (strict_draws if k == 'strict' else draws) for k, v in changed.items()}
        # per image, the paper rule follows torchvision's rate (0.63-0.83 here: on the image whose objects are all
        # small, the modes >= 0.5 are infeasible and redraws include "keep the image", as in torchvision)
        assert abs(rates['paper'] - rates['torchvision']) < 0.17, rates
        assert rates['strict'] < 0.2, rates   # mmdet's rule: the issue saw 0 of 200 draws changed
        totals['paper'] += changed['paper']
        totals['torchvision'] += changed['torchvision']
    overall = {k: totals[k] / (draws * len(images)) for k in ('paper', 'torchvision')}
    assert overall['paper'] >= 0.6 and abs(overall['paper'] - overall['torchvision']) < 0.08, overall


def test_paper_rule_boxes_follow_the_pixels_and_some_object_reaches_the_iou():
    """Every output box is its source box shifted by the crop offset read from the pixels, clipped to the patch."""
    np.random.seed(5)
    cropped = 0
    for h, w, boxes in crowded_coco8_images():
        img = position_image(h, w)
        for min_iou in (0.0, 0.3, 0.5):
            t = SSDMinIoURandomCrop(min_ious=(min_iou,), keep_original=False, max_mode_draws=4)
            for _ in range(8):
                labels = np.arange(len(boxes))
                out = t(dict(img=img, gt_bboxes=boxes.copy(), gt_labels=labels, gt_ignore_flags=labels % 2 == 0))
                if out['img'].shape == img.shape:   # infeasible mode (only small objects): returned unchanged
                    assert min_iou > 0 and out['gt_bboxes'] is not None and 'meta' not in out
                    continue
                cropped += 1
                oh, ow = out['img'].shape[:2]
                x1, y1 = source_position(out['img'], 0, 0)
                np.testing.assert_array_equal(out['img'], img[y1:y1 + oh, x1:x1 + ow])
                assert out['meta']['img_shape'] == (oh, ow)
                assert 0.3 * h - 1 <= oh and 0.3 * w - 1 <= ow and 0.5 - 0.01 <= oh / ow <= 2 + 0.01
                centres = (boxes[:, :2] + boxes[:, 2:]) / 2
                inside = ((centres[:, 0] > x1) & (centres[:, 0] < x1 + ow) & (centres[:, 1] > y1) &
                          (centres[:, 1] < y1 + oh))
                expected = boxes[inside].copy()
                expected[:, 0::2] = expected[:, 0::2].clip(x1, x1 + ow) - x1
                expected[:, 1::2] = expected[:, 1::2].clip(y1, y1 + oh) - y1
                np.testing.assert_array_equal(out['gt_bboxes'], expected)
                assert out['gt_labels'].tolist() == labels[inside].tolist()
                assert out['gt_ignore_flags'].tolist() == (labels % 2 == 0)[inside].tolist()
                patch = np.array([[x1, y1, x1 + ow, y1 + oh]], np.float32)
                assert inside.any() and box_iou_np(patch, boxes[inside]).max() >= min_iou - 1e-6
    assert cropped >= 50


def test_failed_mode_draws_again_instead_of_giving_up():
    """A mode no patch can meet (IoU 0.99 with a tiny box) is redrawn until the feasible one is chosen."""
    sample = dict(img=position_image(100, 100), gt_bboxes=np.array([[40, 40, 44, 44]], np.float32),
                  gt_labels=np.array([0]))
    np.random.seed(1)
    crop = SSDMinIoURandomCrop(min_ious=(0.99, 0.0), keep_original=False, max_trials=5)
    changed = sum(crop(dict(sample))['img'].shape != (100, 100, 3) for _ in range(20))
    assert changed == 20
    # with a single infeasible mode the sample comes back unchanged after max_mode_draws
    hopeless = SSDMinIoURandomCrop(min_ious=(0.99,), keep_original=False, max_trials=5, max_mode_draws=3)
    out = hopeless(dict(sample))
    assert out['img'].shape == (100, 100, 3)
    np.testing.assert_array_equal(out['gt_bboxes'], sample['gt_bboxes'])


def test_crop_options_are_checked():
    with pytest.raises(ValueError, match="iou_rule must be 'any'"):
        SSDMinIoURandomCrop(iou_rule='most')
    with pytest.raises(ValueError, match='needs keep_original=True or at least one'):
        SSDMinIoURandomCrop(min_ious=(), keep_original=False)
    with pytest.raises(ValueError, match=r'min_ious must lie in \[0, 1\]'):
        SSDMinIoURandomCrop(min_ious=(1.5,))


def test_reduced_lowest_layer_boxes_are_the_tf_model_s():
    """TF create_ssd_anchors with reduce_boxes_in_lowest_layer: (0.1, 1), (0.2, 2), (0.2, 1/2) on the first map."""
    gen = DefaultBoxGenerator(reduce_boxes_in_lowest_layer=True, lowest_scale=0.1)
    assert gen.num_anchors == [3, 6, 6, 6, 6, 6]
    assert DefaultBoxGenerator().num_anchors == [6] * 6
    grids = [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    boxes = gen(grids, (300, 300))
    assert boxes.shape == (1917, 4)   # the TF SSD MobileNet 300x300 models' 1917 anchors
    r = 2 ** 0.5
    centre = 300 * 0.5 / 19
    wh = torch.tensor([[0.1, 0.1], [0.2 * r, 0.2 / r], [0.2 / r, 0.2 * r]]) * 300
    expected = torch.cat([centre - wh / 2, centre + wh / 2], 1)
    torch.testing.assert_close(boxes[:3], expected)
    # the other maps are unchanged by the option
    torch.testing.assert_close(boxes[3 * 19 * 19:], DefaultBoxGenerator()(grids, (300, 300))[6 * 19 * 19:])


def test_paper_config_size_and_torchvision_config_unchanged():
    """SSDLite-MobileNetV2 at 320: 4.34M parameters (+-2%), 0.79G MACs (+-3%), the paper's 4.3M / 0.8B."""
    model = build_model(str(REPO / 'configs' / 'ssdlite_mobilenetv2_660e_coco.py')).eval()
    assert model.head.num_anchors == [3, 6, 6, 6, 6, 6]
    x = torch.zeros(1, 3, 320, 320)
    with torch.no_grad():
        logits, deltas = model(x, mode='tensor')
    assert logits.shape == (1, 20 * 20 * 3 + (100 + 25 + 9 + 4 + 1) * 6, 81) and deltas.shape[1] == logits.shape[1]
    params, macs = count_parameters(model), count_macs(lambda: model(x, mode='tensor'))
    assert abs(params / 4.34e6 - 1) < 0.02 and abs(macs / 0.79e9 - 1) < 0.03, (params, macs)
    v3 = load_config(str(REPO / 'configs' / 'ssdlite_mobilenetv3-large_660e_coco.py'))
    assert v3.model.anchor_generator.reduce_boxes_in_lowest_layer is False
    for name in ('ssdlite_mobilenetv2_660e_coco.py', 'ssdlite_mobilenetv3-large_660e_coco.py'):
        crop = [t for t in load_config(str(REPO / 'configs' / name)).train_pipeline
                if t['type'] == 'SSDMinIoURandomCrop'][0]
        assert crop['iou_rule'] == 'any' and 0.0 in crop['min_ious'] and crop['keep_original']
