#!/usr/bin/env python
"""Batch-1 CPU latency of our SSDLite-MobileNetV3-320 against torchvision's ``ssdlite320_mobilenet_v3_large``.

Both are built in this process with the same weights (torchvision's random init, converted to ours) and the same
torch thread count, and run on the same uint8 RGB photo through their whole predict path: preprocessing (pixels /
255, normalise, bilinear resize to 320x320), network, post-processing (softmax, decoding, per-class top-k, NMS)
and boxes scaled back to the photo. Runs alternate between the two so that load changes hit both alike. Our
SSDLite-MobileNetV2-320 (80 classes) is timed beside them. The ratio is ours / torchvision (< 1: ours faster).

With random weights every class score is near 1/91 > 0.001, so at the default threshold each of the 90 classes
keeps its 300 best boxes and NMS sees 27,000 of them: the worst case for post-processing. ``--score-thr 0.05``
gives the light post-processing of a trained model (few boxes above threshold).

    python benchmarks/ssdlite_vs_torchvision.py --threads 1 --runs 50 [--image PHOTO] [--score-thr 0.05] [--json]
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
from backbones.converters import WEIGHT_CONVERTERS  # noqa: E402
from data.io import read_rgb  # noqa: E402
from tasks import Inferencer, load_config  # noqa: E402
from tasks.cli import non_negative_int, positive_int, run_cli  # noqa: E402
from tasks.profiling import count_parameters, time_interleaved  # noqa: E402

DEFAULT_IMAGE = REPO / 'tests' / 'assets' / 'detection' / 'coco8' / 'images' / 'val' / '000000000042.jpg'


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--image', default=str(DEFAULT_IMAGE), help='an RGB photo (any size)')
    parser.add_argument('--threads', type=positive_int, default=1, help='torch intra-op threads for both')
    parser.add_argument('--runs', type=positive_int, default=50, help='timed rounds (default 50)')
    parser.add_argument('--warmup', type=non_negative_int, default=5, help='untimed rounds first (default 5)')
    parser.add_argument('--score-thr', type=float, default=None, help="both models' score threshold "
                        '(default: the models\' 0.001)')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    torch.manual_seed(0)
    tv = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).eval()
    cfg = load_config(REPO / 'configs' / 'ssdlite_mobilenetv3-large_660e_coco.py')
    cfg.model.label_map = cfg.model.classes = cfg.model.cat_ids = None  # the same 90-class output as torchvision
    ours = Inferencer(cfg)
    ours.model.load_state_dict(WEIGHT_CONVERTERS['ssdlite320_mobilenet_v3_large'](tv.state_dict()))
    v2 = Inferencer(REPO / 'configs' / 'ssdlite_mobilenetv2_660e_coco.py')
    if args.score_thr is not None:
        tv.score_thresh = args.score_thr
        ours.model.post_processor.score_thr = args.score_thr
        v2.model.post_processor.score_thr = args.score_thr
    image = read_rgb(args.image)

    @torch.no_grad()
    def run_tv():
        return tv([torch.from_numpy(image).permute(2, 0, 1).float() / 255])[0]

    fns = {'torchvision_mnv3': run_tv, 'ours_mnv3': lambda: ours(image), 'ours_mnv2': lambda: v2(image)}
    a, b = run_tv(), ours(image)
    same = (len(a['scores']) == len(b['scores']) and np.allclose(a['boxes'].numpy(), b['bboxes'], atol=1e-4)
            and np.array_equal(a['labels'].numpy(), b['labels'] + 1))
    latency = time_interleaved(fns, args.runs, args.warmup)
    report = dict(image=os.path.basename(args.image), image_shape=list(image.shape[:2]), threads=args.threads,
                  runs=args.runs, score_thr=args.score_thr if args.score_thr is not None else tv.score_thresh,
                  detections=len(a['scores']), same_detections=bool(same),
                  params=dict(torchvision_mnv3=count_parameters(tv), ours_mnv3=count_parameters(ours.model),
                              ours_mnv2=count_parameters(v2.model)),
                  latency=latency)
    report['ratio_ours_mnv3_over_torchvision'] = (report['latency']['ours_mnv3']['median_ms']
                                                   / report['latency']['torchvision_mnv3']['median_ms'])
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['image']} {report['image_shape']}, {args.threads} thread(s), {args.runs} runs, score_thr "
              f"{report['score_thr']}, {report['detections']} detections, identical: {report['same_detections']}")
        for name, s in report['latency'].items():
            print(f"  {name:18s} params {report['params'][name] / 1e6:6.3f} M   median {s['median_ms']:7.2f} ms   "
                  f"p90 {s['p90_ms']:7.2f} ms")
        print(f"  ratio ours / torchvision (median, MobileNetV3): {report['ratio_ours_mnv3_over_torchvision']:.3f}")
    return report


if __name__ == '__main__':
    run_cli(main)
