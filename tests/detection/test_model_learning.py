"""Learning test: a tiny SSDLite trained a few hundred iterations on drawn images finds the objects again.

It proves that default boxes, matching, box coding, the loss and decoding agree with each other.
"""
import time

import cv2
import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from backbones import MobileNetV2
from tasks.detection import Detector


def draw_scenes(n: int, size: int = 96, seed: int = 0):
    """``n`` noisy images with 1-2 objects each: red rectangles (class 0) and blue discs (class 1)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        img = rng.integers(90, 160, (size, size, 3), dtype=np.uint8)
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, 3))):
            for _attempt in range(20):
                s = int(rng.integers(size // 4, size // 2))
                x, y = (int(v) for v in rng.integers(0, size - s, 2))
                box = [x, y, x + s, y + s]
                if not boxes or box_iou(torch.tensor([box], dtype=torch.float32),
                                        torch.tensor(boxes, dtype=torch.float32)).max() < 0.05:
                    break
            label = int(rng.integers(0, 2))
            if label == 0:
                cv2.rectangle(img, (x, y), (x + s - 1, y + s - 1), (220, 30, 30), -1)
            else:
                cv2.circle(img, (x + s // 2, y + s // 2), s // 2, (30, 30, 220), -1)
            boxes.append(box)
            labels.append(label)
        samples.append(dict(img=img, gt_bboxes=np.array(boxes, np.float32), gt_labels=np.array(labels, np.int64),
                            meta=dict(img_id=i, ori_shape=(size, size), img_shape=(size, size))))
    return samples


def average_precision_50(results, samples, num_classes: int) -> float:
    """VOC-style (area) AP at IoU 0.5 averaged over classes, from torchvision's box_iou."""
    aps = []
    for c in range(num_classes):
        dets, n_gt = [], 0
        for i, (r, s) in enumerate(zip(results, samples)):
            n_gt += int((s['gt_labels'] == c).sum())
            for box, score in zip(r['bboxes'][r['labels'] == c], r['scores'][r['labels'] == c]):
                dets.append((float(score), i, box))
        dets.sort(key=lambda d: -d[0])
        used = [np.zeros(int((s['gt_labels'] == c).sum()), bool) for s in samples]
        tp = []
        for _, i, box in dets:
            gt = samples[i]['gt_bboxes'][samples[i]['gt_labels'] == c]
            if len(gt) == 0:
                tp.append(0)
                continue
            iou = box_iou(torch.tensor(box[None]), torch.tensor(gt))[0].numpy()
            j = int(iou.argmax())
            hit = iou[j] >= 0.5 and not used[i][j]
            used[i][j] |= hit
            tp.append(int(hit))
        tp = np.array(tp)
        recall = np.cumsum(tp) / max(n_gt, 1)
        precision = np.cumsum(tp) / np.arange(1, len(tp) + 1)
        mrec = np.concatenate([[0], recall, [1]])
        mpre = np.concatenate([[0], precision, [0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps.append(float(((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]).sum()))
    return float(np.mean(aps))


def train_on_scenes(model, samples, iterations: int, lr: float = 3e-3, batch_size: int = 4) -> tuple:
    """AdamW + one-cycle lr on random batches of ``samples``, then predict on all of them; returns the first and
    last training losses and the mAP50 of the predictions (every loss must stay finite)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=iterations, pct_start=0.1)
    model.train()
    start, first = time.time(), None
    for _ in range(iterations):
        batch = [samples[i] for i in np.random.permutation(len(samples))[:batch_size]]
        loss = sum(model(**model.data_preprocessor(batch, True), mode='loss').values())
        assert torch.isfinite(loss)
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(samples, False), mode='predict')
    ap = average_precision_50(results, samples, model.num_classes)
    print(f'{type(model).__name__} learning: loss {first:.3f} -> {float(loss):.3f}, mAP50 {ap:.3f}, '
          f'{time.time() - start:.1f} s')
    return first, float(loss), ap


def test_average_precision_helper_on_hand_made_cases():
    samples = [dict(gt_bboxes=np.array([[0, 0, 10, 10]], np.float32), gt_labels=np.array([0]))]
    perfect = [dict(bboxes=np.array([[0, 0, 10, 10]], np.float32), scores=np.array([0.9]), labels=np.array([0]))]
    assert average_precision_50(perfect, samples, 1) == pytest.approx(1.0)
    # a false positive ranked above the hit halves the precision at full recall
    fp_first = [dict(bboxes=np.array([[50, 50, 60, 60], [0, 0, 10, 10]], np.float32), scores=np.array([0.9, 0.8]),
                     labels=np.array([0, 0]))]
    assert average_precision_50(fp_first, samples, 1) == pytest.approx(0.5)


@pytest.fixture
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads are several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_ssdlite_learns_drawn_objects(one_thread):
    torch.manual_seed(0)
    samples = draw_scenes(8)
    names = MobileNetV2(width_mult=0.35).feature_names  # narrow widths merge stages: look the taps up
    model = Detector(backbone=dict(type='MobileNetV2', width_mult=0.35,
                                   out_indices=(names.index('layer14_expand'), len(names) - 1)),
                     neck=dict(type='SSDLiteNeck', extra_channels=(128, 64, 64, 32)),
                     head=dict(type='SSDLiteHead'), num_classes=2,
                     data_preprocessor=dict(type='DetDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3),
                     post_processor=dict(type='SSDPostProcessor', score_thr=0.05, topk=100, max_per_img=20))
    first, last, ap = train_on_scenes(model, samples, iterations=200)
    assert last < 0.3 * first
    assert ap > 0.5
