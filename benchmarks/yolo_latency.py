#!/usr/bin/env python
"""Batch-1 CPU latency of LeYOLO-Nano (640 and 320) beside our SSDLite320-MobileNetV3 and torchvision's
``ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)``, measured in one process.

For each thread count, two interleaved timings (``tasks.profiling.time_interleaved``: the models take turns, the
order alternating every round, so load changes hit all alike):

* ``forward``: the network alone on a ready input tensor (LeYOLO: its tensor mode at 640x640 / 320x320; ours:
  SSDLite's tensor mode at 320x320; torchvision: ``backbone`` + ``head`` at 320x320);
* ``predict``: the whole path from the uint8 RGB photo to boxes in photo coordinates (letterbox or resize,
  normalisation, network, decoding, NMS).

Weights are random (no downloads). The post-processing load then differs from a trained model's: LeYOLO's prior
bias puts every class score near 4e-5, below the 0.001 threshold, while the SSDs' softmax gives every class ~1/91,
so their NMS sees up to 27,000 boxes. ``--score-thr`` sets one threshold for all (e.g. 0.05). Ratios are
LeYOLO / SSDLite320-MobileNetV3 (ours) and ours / torchvision; < 1 means faster.

    python benchmarks/yolo_latency.py --threads 1 2 --runs 30 [--image PHOTO] [--score-thr T] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import data  # noqa: E402,F401
import tasks  # noqa: E402,F401
from data.io import read_rgb  # noqa: E402
from tasks import Inferencer, load_config  # noqa: E402
from tasks.cli import non_negative_int, positive_int, run_cli  # noqa: E402
from tasks.profiling import count_macs, count_parameters, time_interleaved  # noqa: E402

DEFAULT_IMAGE = REPO / 'tests' / 'assets' / 'detection' / 'coco8' / 'images' / 'val' / '000000000042.jpg'


def leyolo(size: int) -> Inferencer:
    cfg = load_config(REPO / 'configs' / 'yolo_leyolo-n_500e_coco.py')
    cfg.infer_pipeline = [dict(type='LetterBox', size=size, pad_val=114)]
    return Inferencer(cfg)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--image', default=str(DEFAULT_IMAGE), help='an RGB photo (any size)')
    parser.add_argument('--threads', type=positive_int, nargs='+', default=[1, 2], help='torch intra-op thread counts')
    parser.add_argument('--runs', type=positive_int, default=30, help='timed rounds (default 30)')
    parser.add_argument('--warmup', type=non_negative_int, default=5, help='untimed rounds first (default 5)')
    parser.add_argument('--score-thr', type=float, default=None, help="one score threshold for all models "
                        "(default: each model's 0.001)")
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    args = parser.parse_args(argv)
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    torch.set_num_threads(args.threads[0])
    torch.manual_seed(0)
    tv = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).eval()
    ssd = Inferencer(REPO / 'configs' / 'ssdlite_mobilenetv3-large_660e_coco.py')
    ley640, ley320 = leyolo(640), leyolo(320)
    if args.score_thr is not None:
        tv.score_thresh = args.score_thr
        for inf in (ssd, ley640, ley320):
            inf.model.post_processor.score_thr = args.score_thr
    image = read_rgb(args.image)
    x640, x320 = torch.randn(1, 3, 640, 640), torch.randn(1, 3, 320, 320)

    def tv_forward():
        return tv.head(list(tv.backbone(x320).values()))

    @torch.no_grad()
    def tv_predict():
        return tv([torch.from_numpy(image).permute(2, 0, 1).float() / 255])[0]

    forward = {'leyolo_n_640': lambda: ley640.model(x640, mode='tensor'),
               'leyolo_n_320': lambda: ley320.model(x320, mode='tensor'),
               'ssdlite320_mnv3_ours': lambda: ssd.model(x320, mode='tensor'),
               'ssdlite320_mnv3_torchvision': tv_forward}
    predict = {'leyolo_n_640': lambda: ley640(image), 'leyolo_n_320': lambda: ley320(image),
               'ssdlite320_mnv3_ours': lambda: ssd(image), 'ssdlite320_mnv3_torchvision': tv_predict}
    models = {'leyolo_n_640': ley640.model, 'leyolo_n_320': ley320.model, 'ssdlite320_mnv3_ours': ssd.model}
    report = dict(image=os.path.basename(args.image), image_shape=list(image.shape[:2]), runs=args.runs,
                  score_thr=args.score_thr,
                  params={**{k: count_parameters(m) for k, m in models.items()},
                          'ssdlite320_mnv3_torchvision': count_parameters(tv)},
                  macs=dict(leyolo_n_640=count_macs(lambda: ley640.model(x640, mode='tensor')),
                            leyolo_n_320=count_macs(lambda: ley320.model(x320, mode='tensor')),
                            ssdlite320_mnv3_ours=count_macs(lambda: ssd.model(x320, mode='tensor')),
                            ssdlite320_mnv3_torchvision=count_macs(tv_forward)),
                  detections={k: int(len(fn()['scores'])) for k, fn in predict.items()},
                  results={})
    for threads in args.threads:
        torch.set_num_threads(threads)
        fwd = time_interleaved(forward, args.runs, args.warmup)
        pred = time_interleaved(predict, args.runs, args.warmup)
        med = {mode: {k: v['median_ms'] for k, v in res.items()} for mode, res in (('forward', fwd), ('predict', pred))}
        ratios = {f'{mode}_{k}_over_ssdlite_ours': med[mode][k] / med[mode]['ssdlite320_mnv3_ours']
                  for mode in med for k in ('leyolo_n_640', 'leyolo_n_320')}
        ratios.update({f'{mode}_ssdlite_ours_over_torchvision': med[mode]['ssdlite320_mnv3_ours']
                       / med[mode]['ssdlite320_mnv3_torchvision'] for mode in med})
        report['results'][str(threads)] = dict(forward=fwd, predict=pred, ratios=ratios)
    if args.json:
        print(json.dumps(report))
        return report
    print(f"{report['image']} {report['image_shape']}, {args.runs} runs, score_thr "
          f"{args.score_thr if args.score_thr is not None else 'model defaults (0.001)'}")
    for name in forward:
        print(f"  {name:28s} params {report['params'][name] / 1e6:6.3f} M  MACs {report['macs'][name] / 1e9:6.3f} G  "
              f"detections {report['detections'][name]}")
    for threads, res in report['results'].items():
        print(f'threads {threads}:')
        for name in forward:
            print(f"  {name:28s} forward median {res['forward'][name]['median_ms']:8.2f} ms (p90 "
                  f"{res['forward'][name]['p90_ms']:8.2f})   predict median {res['predict'][name]['median_ms']:8.2f} ms "
                  f"(p90 {res['predict'][name]['p90_ms']:8.2f})")
        for key, value in res['ratios'].items():
            print(f'  {key:50s} {value:.3f}')
    return report


if __name__ == '__main__':
    run_cli(main)
