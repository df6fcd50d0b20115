"""tools/infer.py with a segmentation config: colour overlays with a legend, label PNGs, images and video."""
import cv2
import numpy as np
import torch

from data.visualization.masks import read_label_png, voc_palette
from tasks import build_model

from seg_testutils import REPO, load_tool, randomize_batchnorm

ASSET = REPO / 'tests' / 'assets' / 'segmentation' / 'street_160.jpg'
CONFIG = """
model = dict(type='Segmentor', num_classes=21,
             backbone=dict(type='MobileNetV2', width_mult=0.25, out_indices=(-2,), output_stride=16),
             neck=dict(type='ASPP', channels=16), head=dict(type='DeepLabHead'))
infer_pipeline = [dict(type='SegTestResize', short_side=64)]
"""


def _checkpoint(tmp_path):
    (tmp_path / 'cfg.py').write_text(CONFIG)
    model = build_model(str(tmp_path / 'cfg.py'))
    randomize_batchnorm(model)
    with torch.no_grad():
        model.head.classifier.bias.copy_(torch.linspace(0, 3, 21))  # class 20 dominates, a few others show up
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'model.pth')
    return str(tmp_path / 'cfg.py'), str(tmp_path / 'model.pth')


def test_visualize_draws_overlay_and_legend():
    model = build_model(dict(model=dict(type='Segmentor', num_classes=21,
                                        backbone=dict(type='MobileNetV2', width_mult=0.25, out_indices=(-2,)),
                                        head=dict(type='DeepLabHead'))))
    image = np.full((80, 120, 3), 100, np.uint8)
    seg = np.zeros((80, 120), np.int64)
    seg[40:, 60:] = 15  # person
    picture = model.visualize(image, dict(seg=seg))
    assert picture.shape == image.shape and picture.dtype == np.uint8
    expected = np.round(0.5 * 100 + 0.5 * np.array(voc_palette(21)[15])).astype(np.uint8)
    np.testing.assert_array_equal(picture[70, 110], expected)   # blended colour
    np.testing.assert_array_equal(picture[70, 20], [100, 100, 100])  # background untouched
    assert (picture[:30, :60] != 100).any()                     # the legend


def test_infer_tool_on_image_and_video(tmp_path):
    config, checkpoint = _checkpoint(tmp_path)
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 5, (96, 64))
    for i in range(3):
        writer.write(np.full((64, 96, 3), 40 * i, np.uint8))
    writer.release()
    infer = load_tool('infer')
    out = tmp_path / 'out'
    written = infer.main([config, checkpoint, '--input', str(ASSET), '--output', str(out), '--save-raw'])
    overlay = cv2.imread(str(out / 'street_160.png'))
    assert overlay.shape == (107, 160, 3)
    assert str(out / 'labels' / 'street_160.png') in written
    seg = read_label_png(str(out / 'labels' / 'street_160.png'))
    assert seg.shape == (107, 160) and 0 <= seg.min() and seg.max() < 21
    written = infer.main([config, checkpoint, '--input', str(video), '--output', str(out), '--save-raw'])
    capture = cv2.VideoCapture(written[0])
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    assert frames == 3
    assert read_label_png(str(out / 'labels' / 'clip_000002.png')).shape == (64, 96)
