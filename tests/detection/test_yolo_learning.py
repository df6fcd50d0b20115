"""Learning test of the YOLO-style detector: a narrow LeYOLO trained a short while on drawn images finds the objects
again. It proves that anchor points, the head's channel layout, task-aligned assignment, the loss and decoding
agree with each other. (The full check on real photos is configs/yolo_leyolo-n_coco8.py, see docs/detection.md.)
"""
import numpy as np
import pytest
import torch

from tasks.detection.yolo import YOLODetector, YOLOPostProcessor
from tests.detection.test_model_learning import draw_scenes, train_on_scenes


@pytest.mark.slow
def test_leyolo_learns_drawn_objects():
    torch.manual_seed(0)
    np.random.seed(0)
    samples = draw_scenes(8, size=64)
    # BatchNorm momentum 0.1 (YOLO's 0.03 averages over ~33 steps: too slow for weights moving this fast)
    norm = dict(type='bn', eps=1e-3, momentum=0.1)
    model = YOLODetector(backbone=dict(type='LeYOLONet', arch='n', width_mult=0.5, depths=(1, 1, 1), norm_layer=norm),
                         neck=dict(type='LeNeck', num_blocks=2, expand_ratio=2.0, norm_layer=norm),
                         head=dict(type='YOLOHead', norm_layer=norm),
                         num_classes=2, post_processor=dict(type='YOLOPostProcessor', score_thr=0.05,
                                                            max_per_img=20))
    assert isinstance(model.post_processor, YOLOPostProcessor)
    first, last, ap = train_on_scenes(model, samples, iterations=150)
    assert last < 0.5 * first
    assert ap > 0.5
