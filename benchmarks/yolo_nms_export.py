#!/usr/bin/env python
"""The YOLO detector with NMS in the ONNX graph (``tools/export.py --with-nms``): equality with the predict path
and onnxruntime latency against torch, in one run.

Exports ``tasks.detection.yolo.nms_export.YOLODetectorWithNMS`` at ``--size`` with the TorchScript exporter
(opset 17; NMS over the candidates above the threshold, the default, and the fixed-shape form with the threshold
after NMS) and, with ``--dynamo``, the torch.export exporter (opset 18); matches every graph's detections on
``--inputs`` random inputs with ``YOLODetector.predict`` (label, score, box to 1e-4); then times, in turns
(``tasks.profiling.time_interleaved``), batch 1 on ``--threads`` threads: torch predict, torch network alone and
each onnxruntime graph (network + decoding + NMS). With ``--images`` the inputs are letterboxed photos, the predict
path maps its boxes back to the photo and the graph's boxes go through the letterbox inverse of docs/deploy.md.

Without ``--checkpoint`` the weights are random with BatchNorms randomised and class logits spread (weights
N(0, 1), bias ``--class-bias``: -10 lets about 10,000 of the 168,000 pairs at 320 pass score_thr 0.001) so that
scores are distinct; a random head's own init scores nothing over the threshold.

    python benchmarks/yolo_nms_export.py [--config configs/yolo_leyolo-n_coco8.py] [--checkpoint CKPT]
        [--images tests/assets/detection/coco8/images/train] [--size 320] [--dynamo]
"""
from __future__ import annotations

import argparse
import glob
import os.path as osp
import sys
import tempfile
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch
from torch.nn.modules.batchnorm import _BatchNorm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import data  # noqa: E402,F401
import tasks  # noqa: E402,F401
from tasks import build_model  # noqa: E402
from tasks.cli import positive_int, run_cli  # noqa: E402
from tasks.detection.nms_export import match_detections, unpad, with_nms  # noqa: E402
from tasks.profiling import time_interleaved  # noqa: E402
from data.io import read_rgb  # noqa: E402
from data.transforms.letterbox import LetterBox  # noqa: E402
from tools.export import export  # noqa: E402


def spread_scores(model, class_bias: float, seed: int = 0) -> None:
    """Random BatchNorm statistics and class logits N(0, 1) + ``class_bias``: distinct scores from random weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4)
        for cls in model.head.cls_branches:
            cls[-1].weight.normal_(0.0, 1.0, generator=g)
            cls[-1].bias.fill_(class_bias)


def image_files(paths: List[str]) -> List[str]:
    files = []
    for path in paths:
        files += sorted(glob.glob(osp.join(path, '*.jpg')) + glob.glob(osp.join(path, '*.png'))) \
            if osp.isdir(path) else [path]
    return files


def letterbox_input(path: str, size: int) -> Tuple[torch.Tensor, dict]:
    """A photo letterboxed to ``size`` (the YOLO configs' test pipeline) as the network input (pixels / 255, what
    ``YOLODetector``'s data preprocessor computes), and the letterbox's ``meta``."""
    sample = LetterBox(size)(dict(img=read_rgb(path), meta={}))
    x = torch.from_numpy(np.ascontiguousarray(sample['img'])).permute(2, 0, 1)[None].float() / 255.0
    return x, sample['meta']


def to_original(result: dict, meta: dict) -> dict:
    """The graph's boxes (network-input pixels) back to the photo: the letterbox inverse of docs/deploy.md section
    3, ``x = (x_in - pad_left) / scale_x``, ``y = (y_in - pad_top) / scale_y``, clipped to the photo."""
    if not meta:
        return result
    (sx, sy), (left, top), (h, w) = meta['scale_factor'], meta['pad'], meta['ori_shape'][:2]
    boxes = result['bboxes'].copy()
    boxes[:, 0::2] = ((boxes[:, 0::2] - left) / sx).clip(0, w)
    boxes[:, 1::2] = ((boxes[:, 1::2] - top) / sy).clip(0, h)
    return dict(result, bboxes=boxes)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=str(REPO / 'configs' / 'yolo_leyolo-n_coco8.py'),
                        help='YOLO config (default configs/yolo_leyolo-n_coco8.py)')
    parser.add_argument('--checkpoint', help='trained weights (default: random, scores spread)')
    parser.add_argument('--class-bias', type=float, default=-10.0,
                        help='without --checkpoint: class logit bias of the random head (default -10)')
    parser.add_argument('--size', type=positive_int, default=320, help='square input size (default 320)')
    parser.add_argument('--max-det', type=positive_int, default=300, help='detections per image (default 300)')
    parser.add_argument('--inputs', type=positive_int, default=3, help='random inputs to check (without --images)')
    parser.add_argument('--images', nargs='+', help='photos or folders: letterboxed inputs, boxes compared in the '
                        'photo through the letterbox inverse')
    parser.add_argument('--runs', type=positive_int, default=20, help='timed rounds (default 20)')
    parser.add_argument('--threads', type=positive_int, default=1, help='torch and onnxruntime threads (default 1)')
    parser.add_argument('--dynamo', action='store_true', help='also the torch.export exporter (opset 18)')
    args = parser.parse_args(argv)
    import onnxruntime as ort
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = build_model(args.config, args.checkpoint)
    if not args.checkpoint:
        spread_scores(model, args.class_bias)
    model.eval()
    size = args.size
    variants = [('onnx threshold first (TorchScript)', True, True), ('onnx threshold after (TorchScript)', True, False)]
    if args.dynamo:
        variants.append(('onnx threshold first (dynamo)', False, True))
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    if args.images:
        xs, metas = zip(*[letterbox_input(path, size) for path in image_files(args.images)])
    else:
        xs = [torch.from_numpy(np.random.default_rng(s).standard_normal((1, 3, size, size)).astype(np.float32))
              for s in range(args.inputs)]
        metas = [{}] * len(xs)
    wrapper = with_nms(model, (size, size), args.max_det)
    with torch.no_grad():
        references = [{k: v[:wrapper.max_det] for k, v in model.predict(x, [dict(meta=meta)])[0].items()}
                      for x, meta in zip(xs, metas)]
    print(f'{type(model).__name__} at {size}x{size}: {wrapper.num_points} points, '
          f'{wrapper.num_points * wrapper.num_classes} pairs, TopK {wrapper.num_candidates}; predict keeps '
          f'{[len(r["scores"]) for r in references]} detections')
    for first in (True, False):  # the wrapper in torch: the same algorithm, the same arithmetic as predict
        wrapper.threshold_first = first
        with torch.no_grad():
            counts = []
            for x, meta, reference in zip(xs, metas, references):
                ours = to_original(unpad(*[t.numpy() for t in wrapper(x)]), meta)
                matched, tied = match_detections(ours, reference, 1e-4)
                counts.append(f'{matched}+{tied}/{len(reference["scores"])}')
        print(f'torch wrapper, threshold {"first" if first else "after"}: equal + tie / predict: {", ".join(counts)}')
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, legacy, first in variants:
            wrapper.threshold_first = first
            path = str(Path(tmp) / f'{len(sessions)}.onnx')
            export(model, (3, size, size), path, opset=17 if legacy else 18, legacy=legacy, wrapper=wrapper)
            session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            counts = []
            for x, meta, reference in zip(xs, metas, references):
                ours = to_original(unpad(*session.run(None, {session.get_inputs()[0].name: x.numpy()})), meta)
                matched, tied = match_detections(ours, reference, 1e-4)
                counts.append(f'{matched}+{tied}/{len(reference["scores"])}({len(ours["scores"])})')
            print(f'{name}: equal (label, score, box to 1e-4) + tie / predict (graph): {", ".join(counts)}')
            sessions[name] = session
        x = xs[0]
        fns = {'torch predict': lambda: model.predict(x, [dict(meta=metas[0])]),
               'torch network': lambda: model._forward(x)}
        for name, session in sessions.items():
            fns[name] = (lambda s: lambda: s.run(None, {s.get_inputs()[0].name: x.numpy()}))(session)
        stats = time_interleaved(fns, runs=args.runs, warmup=3)
    base = stats['torch predict']['median_ms']
    for name, s in stats.items():
        print(f'{name}: {s["median_ms"]:.1f} ms median ({s["median_ms"] / base:.2f}x torch predict)')


if __name__ == '__main__':
    run_cli(main)
