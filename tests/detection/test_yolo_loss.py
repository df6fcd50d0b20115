"""YOLO-style loss: the issue-14 peer case, empty images, ignored boxes, DFL by hand, gradients, learning."""
import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from tasks import TASKS
from tasks.detection.yolo.coder import (bbox_to_distance, dfl_expectation, distance_to_bbox, make_anchor_points)
from tasks.detection.yolo.loss import YOLOLoss, distribution_focal_loss

STRIDES = [8, 16, 32]


def peer_feats():
    """The issue's head maps: per level (8, 4, 2), 64 box logits then 4 class logits, drawn in that order."""
    g = torch.Generator().manual_seed(4)
    return [torch.cat([torch.randn(2, 64, h, h, generator=g), torch.randn(2, 4, h, h, generator=g) * 0.5 - 4.0], 1)
            for h in (8, 4, 2)]


def peer_targets():
    rows = torch.tensor([(0, 3, 16, 17, 24, 26), (0, 1, 45, 35, 30, 50), (1, 0, 25, 23, 10, 6),
                         (1, 2, 32, 48, 60, 28)], dtype=torch.float32)
    boxes, labels = [], []
    for i in range(2):
        r = rows[rows[:, 0] == i]
        boxes.append(torch.cat([r[:, 2:4] - r[:, 4:6] / 2, r[:, 2:4] + r[:, 4:6] / 2], 1))
        labels.append(r[:, 1].long())
    return boxes, labels


def no_targets(batch=2):
    return [torch.zeros(0, 4)] * batch, [torch.zeros(0, dtype=torch.long)] * batch


def test_peer_case():
    """The returned losses are scaled by the images per batch (2 here, one process): loss / 2 is the issue's
    per-image component after gains, i.e. gain * (term summed over the batch) / max(sum of target scores, 1)."""
    loss = TASKS.build(dict(type='YOLOLoss', num_classes=4, reg_max=16))
    out = loss(peer_feats(), STRIDES, *peer_targets())
    per_image = {k: v.item() / 2 for k, v in out.items()}
    assert per_image['loss_box'] == pytest.approx(5.9264426, abs=1e-4)
    assert per_image['loss_cls'] == pytest.approx(8.4327345, abs=1e-4)
    assert per_image['loss_dfl'] == pytest.approx(4.0323706, abs=1e-4)


def test_peer_case_without_targets():
    out = YOLOLoss(4)(peer_feats(), STRIDES, *no_targets())
    assert out['loss_box'].item() == 0 and out['loss_dfl'].item() == 0
    assert out['loss_cls'].item() / 2 == pytest.approx(6.7754927, abs=1e-4)
    # with no positive, the class term is 0.5 * sum softplus(logit) over every point and class / 1
    feats = peer_feats()
    logits = torch.cat([f[:, 64:].flatten(2) for f in feats], 2)
    torch.testing.assert_close(out['loss_cls'], 0.5 * F.softplus(logits).sum() * 2)


def test_scaling_by_batch_and_world_size():
    base = YOLOLoss(4, world_size=1)(peer_feats(), STRIDES, *peer_targets())
    ddp = YOLOLoss(4, world_size=4)(peer_feats(), STRIDES, *peer_targets())
    for key in base:
        torch.testing.assert_close(ddp[key], 4 * base[key])


def test_mixed_batch_and_gradients_flow():
    feats = [f.clone().requires_grad_(True) for f in peer_feats()]
    boxes, labels = peer_targets()
    boxes[1], labels[1] = torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)  # second image without objects
    out = YOLOLoss(4)(feats, STRIDES, boxes, labels)
    assert all(torch.isfinite(v) and v > 0 for v in out.values())
    sum(out.values()).backward()
    for f in feats:
        assert torch.isfinite(f.grad).all()
    grads = torch.cat([f.grad.flatten(2) for f in feats], 2)
    assert grads[0, :64].abs().sum() > 0 and grads[:, 64:].abs().sum() > 0
    assert grads[1, :64].abs().sum() == 0  # no box gradient where nothing was assigned


def test_empty_batch_keeps_the_graph():
    feats = [f.clone().requires_grad_(True) for f in peer_feats()]
    out = YOLOLoss(4)(feats, STRIDES, *no_targets())
    sum(out.values()).backward()
    assert all(torch.isfinite(f.grad).all() for f in feats)


def test_ignored_boxes_are_neither_positives_nor_negatives():
    feats = peer_feats()
    crowd = torch.tensor([[8.0, 8.0, 40.0, 24.0]])  # contains 4 x 2 stride-8 points and 1 stride-32 point
    boxes = [crowd, torch.zeros(0, 4)]
    labels = [torch.tensor([1]), torch.zeros(0, dtype=torch.long)]
    out = YOLOLoss(4)(feats, STRIDES, boxes, labels, [torch.tensor([True]), torch.zeros(0, dtype=torch.bool)])
    assert out['loss_box'] == 0 and out['loss_dfl'] == 0  # not a positive
    points, _ = make_anchor_points([(8, 8), (4, 4), (2, 2)], STRIDES)
    inside = ((points[:, 0] > 8) & (points[:, 0] < 40) & (points[:, 1] > 8) & (points[:, 1] < 24))
    assert inside.sum() == 9
    logits = torch.cat([f[:, 64:].flatten(2) for f in feats], 2)  # (2, K, N)
    weight = torch.ones(2, 1, len(points))
    weight[0, 0, inside] = 0  # image 0: no class loss inside the crowd box
    torch.testing.assert_close(out['loss_cls'], 0.5 * (F.softplus(logits) * weight).sum() * 2)
    # the same box not ignored is a positive
    out = YOLOLoss(4)(feats, STRIDES, boxes, labels, [torch.tensor([False]), torch.zeros(0, dtype=torch.bool)])
    assert out['loss_box'] > 0


def test_distribution_focal_loss_by_hand():
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.5], [3.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([1.25, 0.0])
    logp = logits.log_softmax(-1)
    expected = torch.stack([-(0.75 * logp[0, 1] + 0.25 * logp[0, 2]), -logp[1, 0]])
    torch.testing.assert_close(distribution_focal_loss(logits, target), expected)


def test_bad_head_maps_are_reported():
    with pytest.raises(ValueError, match=r'head map 0 must be \(B, 4\*reg_max \+ num_classes = 68, H, W\)'):
        YOLOLoss(4)([torch.zeros(2, 60, 8, 8)], [8], *no_targets())
    with pytest.raises(ValueError, match='one stride per head map'):
        YOLOLoss(4)(peer_feats(), [8, 16], *no_targets())


# ----- box coding -----
def test_anchor_points_order_and_strides():
    points, strides = make_anchor_points([(2, 3), (1, 1)], [8, 16])
    assert points.tolist() == [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12], [8, 8]]
    assert strides.flatten().tolist() == [8] * 6 + [16]
    points, _ = make_anchor_points([(1, 2)], [4], offset=0.0)
    assert points.tolist() == [[0, 0], [4, 0]]


def test_dfl_expectation_and_distance_round_trip():
    logits = torch.full((1, 2, 4, 16), -1e4)
    for side, bin_ in enumerate([0, 3, 7, 15]):
        logits[0, 0, side, bin_] = 0.0  # one-hot bins per side
    logits[0, 1, :, 2:4] = 0.0  # equal mass on bins 2 and 3
    dist = dfl_expectation(logits)
    assert dist[0, 0].tolist() == [0.0, 3.0, 7.0, 15.0] and dist[0, 1].tolist() == [2.5] * 4
    points = torch.tensor([[10.0, 20.0], [5.0, 5.0]])
    boxes = distance_to_bbox(points, dist)
    assert boxes[0].tolist() == [[10.0, 17.0, 17.0, 35.0], [2.5, 2.5, 7.5, 7.5]]
    torch.testing.assert_close(bbox_to_distance(points, boxes), dist)
    assert bbox_to_distance(points, boxes, max_dist=14.99)[0, 0].tolist() == pytest.approx([0, 3, 7, 14.99])


def test_head_maps_learn_a_box():
    """Optimising raw head maps with the loss moves the best-scored box onto the target and its class up."""
    torch.manual_seed(0)
    feats = [torch.nn.Parameter(torch.randn(1, 68, h, h) * 0.1) for h in (8, 4, 2)]
    boxes, labels = [torch.tensor([[14.0, 6.0, 46.0, 30.0]])], [torch.tensor([2])]
    loss_fn = YOLOLoss(4)
    optimiser = torch.optim.Adam(feats, lr=0.05)
    first = None
    for _ in range(150):
        total = sum(loss_fn(feats, STRIDES, boxes, labels).values())
        first = total.item() if first is None else first
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    assert total.item() < 0.2 * first
    points, strides = make_anchor_points([(8, 8), (4, 4), (2, 2)], STRIDES)
    flat = torch.cat([f.detach().flatten(2) for f in feats], 2)[0].T  # (N, 68)
    pred = distance_to_bbox(points, dfl_expectation(flat[:, :64].reshape(-1, 4, 16)) * strides)
    scores = flat[:, 64:].sigmoid()
    best = scores.max(1).values.argmax()
    assert scores[best].argmax() == 2 and scores[best, 2] > 0.5
    assert box_iou(pred[best:best + 1], boxes[0]).item() > 0.9
    assert math.isfinite(total.item())
