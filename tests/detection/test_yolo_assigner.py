"""Task-aligned assigner (TOOD) on hand-made cases, and against a plain per-box loop on random data."""
import pytest
import torch
from torchvision.ops import complete_box_iou

from tasks import TASKS
from tasks.detection.yolo.assigner import TaskAlignedAssigner
from tasks.detection.yolo.coder import make_anchor_points

# one stride-8 level on a 64x64 input: 8x8 points at 4, 12, ..., 60
POINTS, _ = make_anchor_points([(8, 8)], [8])
N, K = 64, 3


def point_index(x: float, y: float) -> int:
    return int((y - 4) // 8 * 8 + (x - 4) // 8)


def run(assigner, gt_boxes, gt_labels, pd_boxes=None, scores=None, mask=None):
    """One image: gt (M, 4) / (M,) lists; predictions default to each point's own 8x8 cell box, score 0.5."""
    gt = torch.tensor(gt_boxes, dtype=torch.float32).reshape(1, -1, 4)
    m = gt.shape[1]
    labels = torch.tensor(gt_labels, dtype=torch.long).reshape(1, m, 1)
    mask = torch.ones(1, m, 1) if mask is None else torch.tensor(mask, dtype=torch.float32).reshape(1, m, 1)
    if pd_boxes is None:
        pd_boxes = torch.cat([POINTS - 4, POINTS + 4], -1)
    pd_boxes = torch.as_tensor(pd_boxes, dtype=torch.float32).reshape(1, N, 4)
    scores = torch.full((1, N, K), 0.5) if scores is None else torch.as_tensor(scores).reshape(1, N, K)
    return assigner(scores, pd_boxes, POINTS, labels, gt, mask)


def inside(box):
    x1, y1, x2, y2 = box
    return {i for i, (x, y) in enumerate(POINTS.tolist()) if x1 < x < x2 and y1 < y < y2}


def test_box_owns_exactly_the_points_inside_it():
    box = [10.0, 10.0, 30.0, 22.0]  # contains x in {12, 20, 28}, y in {12, 20}
    gt = torch.tensor(box)
    out = run(TaskAlignedAssigner(topk=10), [box], [2], pd_boxes=gt.expand(N, 4))  # every prediction = gt
    fg = set(torch.nonzero(out['fg_mask'][0]).flatten().tolist())
    assert fg == inside(box) and len(fg) == 6
    assert (out['assigned_gt'][0, list(fg)] == 0).all() and (out['assigned_gt'][0][~out['fg_mask'][0]] == -1).all()
    assert (out['target_labels'][0, list(fg)] == 2).all() and (out['target_labels'][0][~out['fg_mask'][0]] == K).all()
    assert torch.equal(out['target_bboxes'][0, list(fg)], gt.expand(6, 4))
    # CIoU 1 and equal scores: every positive's target is max_u = 1 at class 2, zero elsewhere
    torch.testing.assert_close(out['target_scores'][0, list(fg)], torch.tensor([0.0, 0.0, 1.0]).expand(6, 3))
    assert out['target_scores'][0][~out['fg_mask'][0]].abs().sum() == 0


def test_centre_on_the_edge_is_not_inside():
    # x1 = 12 and y2 = 20 pass exactly through point centres: those points are excluded (strictly inside)
    box = [12.0, 4.5, 29.0, 20.0]
    out = run(TaskAlignedAssigner(topk=10), [box], [0], pd_boxes=torch.tensor(box).expand(N, 4))
    fg = set(torch.nonzero(out['fg_mask'][0]).flatten().tolist())
    assert fg == {point_index(20, 12), point_index(28, 12)}


def test_topk_keeps_the_best_aligned_candidates():
    box = [0.0, 0.0, 40.0, 40.0]  # 5x5 = 25 candidates
    scores = torch.full((N, K), 0.1)
    chosen = [point_index(12, 20), point_index(36, 4), point_index(28, 28)]
    for rank, i in enumerate(chosen):
        scores[i, 1] = 0.9 - 0.1 * rank
    scores[point_index(52, 52), 1] = 0.99  # high score but outside the box: never a candidate
    out = run(TaskAlignedAssigner(topk=3), [box], [1], pd_boxes=torch.tensor(box).expand(N, 4), scores=scores)
    assert set(torch.nonzero(out['fg_mask'][0]).flatten().tolist()) == set(chosen)
    # normalised alignment (TOOD eq. 10): u = 1, t = sqrt(s), target = t * 1 / max t
    expected = torch.tensor([0.9, 0.8, 0.7]).sqrt() / 0.9 ** 0.5
    torch.testing.assert_close(out['target_scores'][0, chosen, 1], expected)


def test_target_scores_are_normalised_per_box():
    """Two positives: s = 0.64, 0.25 and CIoU 1 -> t = 0.8, 0.5 -> targets 1.0 and 0.625 (t * max_u / max_t)."""
    box = [8.0, 0.0, 24.0, 8.0]  # candidates (12, 4) and (20, 4)
    a, b = point_index(12, 4), point_index(20, 4)
    scores = torch.full((N, K), 0.5)
    scores[a, 0], scores[b, 0] = 0.64, 0.25
    out = run(TaskAlignedAssigner(topk=10), [box], [0], pd_boxes=torch.tensor(box).expand(N, 4), scores=scores)
    torch.testing.assert_close(out['target_scores'][0, [a, b], 0], torch.tensor([1.0, 0.625]))
    # with the predicted box at b worse, max_u stays 1 (from a) and b's target shrinks with u^6
    pd = torch.tensor(box).expand(N, 4).clone()
    pd[b] = torch.tensor([8.0, 0.0, 20.0, 8.0])
    u_b = complete_box_iou(torch.tensor([box]), pd[b:b + 1])[0, 0]
    out = run(TaskAlignedAssigner(topk=10), [box], [0], pd_boxes=pd, scores=scores)
    torch.testing.assert_close(out['target_scores'][0, b, 0], 0.5 * u_b ** 6 / 0.8)


@pytest.mark.parametrize('order', [(0, 1), (1, 0)])
@pytest.mark.parametrize('prediction,winner', [([1.0, 1.0, 23.0, 23.0], 0), ([9.0, 9.0, 39.0, 39.0], 1)])
def test_point_claimed_by_two_boxes_goes_to_the_higher_ciou(order, prediction, winner):
    boxes = [[0.0, 0.0, 24.0, 24.0], [8.0, 8.0, 40.0, 40.0]]  # both contain the point (12, 12)
    p = point_index(12, 12)
    pd = torch.cat([POINTS - 4, POINTS + 4], -1)
    pd[p] = torch.tensor(prediction)
    gts = [boxes[i] for i in order]
    # topk 16 >= the candidates of either box: p is a positive of both before the tie is resolved
    out = run(TaskAlignedAssigner(topk=16), gts, list(order), pd_boxes=pd)
    assert out['fg_mask'][0, p] and out['assigned_gt'][0, p] == order.index(winner)
    assert out['target_labels'][0, p] == winner
    assert torch.equal(out['target_bboxes'][0, p], torch.tensor(boxes[winner]))
    assert out['target_scores'][0, p, 1 - winner] == 0 and out['target_scores'][0, p, winner] > 0


def test_padding_rows_are_not_assigned():
    box = [10.0, 10.0, 30.0, 22.0]
    pad = [0.0, 0.0, 64.0, 64.0]  # would contain every point if it were valid
    alone = run(TaskAlignedAssigner(), [box], [2])
    padded = run(TaskAlignedAssigner(), [box, pad], [2, 1], mask=[1, 0])
    zeros = run(TaskAlignedAssigner(), [box, [0, 0, 0, 0]], [2, 0], mask=[1, 0])  # zero-size padding: no NaN
    for out in (padded, zeros):
        for key in ('fg_mask', 'assigned_gt', 'target_labels', 'target_bboxes', 'target_scores'):
            assert torch.equal(out[key], alone[key]), key


def test_empty_images_and_batches():
    assigner = TaskAlignedAssigner()
    scores = torch.rand(2, N, K)
    pd = torch.cat([POINTS - 4, POINTS + 4], -1).expand(2, N, 4)
    out = assigner(scores, pd, POINTS, torch.zeros(2, 0, 1, dtype=torch.long), torch.zeros(2, 0, 4),
                   torch.zeros(2, 0, 1))
    assert out['fg_mask'].shape == (2, N) and not out['fg_mask'].any()
    assert (out['assigned_gt'] == -1).all() and (out['target_labels'] == K).all()
    assert out['target_scores'].shape == (2, N, K) and out['target_scores'].abs().sum() == 0
    # image 1 has only padding, image 0 one box
    gt = torch.tensor([[[10.0, 10.0, 30.0, 22.0]], [[0.0, 0.0, 0.0, 0.0]]])
    out = assigner(scores, pd, POINTS, torch.tensor([[[1]], [[0]]]), gt, torch.tensor([[[1.0]], [[0.0]]]))
    assert out['fg_mask'][0].sum() == 6 and not out['fg_mask'][1].any()
    assert torch.isfinite(out['target_scores']).all()


def test_min_gt_side_gives_tiny_boxes_candidates():
    tiny = [6.5, 6.5, 8.5, 8.5]  # 2x2 px between point centres: contains none
    pd = torch.tensor(tiny).expand(N, 4)
    assert not run(TaskAlignedAssigner(), [tiny], [0], pd_boxes=pd)['fg_mask'].any()
    out = run(TaskAlignedAssigner(min_gt_side=8.0), [tiny], [0], pd_boxes=pd)  # widened to (3.5..11.5)
    assert set(torch.nonzero(out['fg_mask'][0]).flatten().tolist()) == {point_index(4, 4)}
    assert torch.equal(out['target_bboxes'][0, point_index(4, 4)], torch.tensor(tiny))  # the real box is the target
    with pytest.raises(ValueError, match='min_gt_side'):
        TaskAlignedAssigner(min_gt_side=0)


def test_bad_labels_are_reported():
    with pytest.raises(ValueError, match=r'gt_labels must lie in \[0, 3\)'):
        run(TaskAlignedAssigner(), [[10.0, 10.0, 30.0, 22.0]], [3])


def loop_reference(scores, pd, points, labels, gts, mask, topk, alpha, beta):
    """Plain per-image, per-box loop over the definitions in the issue, for comparison."""
    batch, n, k = scores.shape
    target_scores = torch.zeros(batch, n, k)
    owner = torch.full((batch, n), -1)
    for b in range(batch):
        claims = {}  # point -> list of (ciou, gt index, t)
        for m in range(gts.shape[1]):
            if not mask[b, m]:
                continue
            x1, y1, x2, y2 = gts[b, m].tolist()
            cand = [i for i in range(n) if min(points[i, 0] - x1, points[i, 1] - y1, x2 - points[i, 0],
                                               y2 - points[i, 1]) > 1e-9]
            if not cand:
                continue
            u = complete_box_iou(gts[b, m:m + 1], pd[b, cand])[0].clamp(min=0)
            t = scores[b, cand, labels[b, m]] ** alpha * u ** beta
            best = t.argsort(descending=True)[:topk]
            for j in best.tolist():
                claims.setdefault(cand[j], []).append((u[j].item(), m, t[j].item()))
        won = {}  # gt -> list of (point, t, u)
        for i, c in claims.items():
            u, m, t = max(c, key=lambda e: e[0])
            owner[b, i] = m
            won.setdefault(m, []).append((i, t, u))
        for m, entries in won.items():
            max_t = max(e[1] for e in entries)
            max_u = max(e[2] for e in entries)
            for i, t, _ in entries:
                target_scores[b, i, labels[b, m]] = t * max_u / (max_t + 1e-9)
    return owner, target_scores


def test_matches_a_plain_loop_on_random_boxes():
    torch.manual_seed(3)
    points, _ = make_anchor_points([(8, 8), (4, 4), (2, 2)], [8, 16, 32])
    n = len(points)
    batch, m = 3, 5
    xy = torch.rand(batch, m, 2) * 48
    wh = torch.rand(batch, m, 2) * 40 + 4
    gts = torch.cat([xy, xy + wh], -1)
    labels = torch.randint(0, K, (batch, m))
    mask = torch.rand(batch, m) > 0.2
    dist = torch.rand(batch, n, 4) * 20 + 1
    pd = torch.cat([points - dist[..., :2], points + dist[..., 2:]], -1)
    scores = torch.rand(batch, n, K)
    assigner = TASKS.build(dict(type='TaskAlignedAssigner', topk=4, alpha=0.5, beta=6.0))
    out = assigner(scores, pd, points, labels[..., None], gts, mask[..., None].float())
    owner, target_scores = loop_reference(scores, pd, points, labels, gts, mask, 4, 0.5, 6.0)
    assert out['fg_mask'].sum() > 10  # the case is not trivial
    assert torch.equal(out['assigned_gt'], owner)
    torch.testing.assert_close(out['target_scores'], target_scores, rtol=1e-5, atol=1e-7)
