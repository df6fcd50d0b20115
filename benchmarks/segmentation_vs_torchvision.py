#!/usr/bin/env python
"""Batch-1 latency of our segmentation models against torchvision's, in one process, same threads and input.

Builds torchvision's ``lraspp_mobilenet_v3_large`` and ``deeplabv3_mobilenet_v3_large`` (random weights), converts
their weights into ours with the registered converters (and checks the logits agree), then times the tensor mode
of each pair with interleaved runs (ours, theirs, ours, ...) so machine load hits both alike. torchvision's
DeepLabV3 computes its auxiliary head even in eval mode; it is removed before timing, so both do the same work. Our Mobile
DeepLabv3-MobileNetV2 (ASPP-lite, OS16) is timed beside them. Prints a table, or JSON with ``--json``.

    python benchmarks/segmentation_vs_torchvision.py --size 520 --runs 30 --threads 2
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import data  # noqa: E402,F401
import tasks  # noqa: E402,F401
from backbones.converters import WEIGHT_CONVERTERS  # noqa: E402
from tasks import build_model  # noqa: E402
from tasks.cli import non_negative_int, positive_int, run_cli  # noqa: E402
from tasks.profiling import count_parameters, time_calls, time_interleaved  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=positive_int, default=520, help='square input size (torchvision evaluates at 520)')
    parser.add_argument('--runs', type=positive_int, default=30, help='timed rounds (default 30)')
    parser.add_argument('--warmup', type=non_negative_int, default=3, help='untimed rounds first (default 3)')
    parser.add_argument('--threads', type=positive_int, default=torch.get_num_threads(),
                        help='torch threads (default: torch default)')
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large, lraspp_mobilenet_v3_large
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    x = torch.randn(1, 3, args.size, args.size, device=device)
    pairs = [
        ('LR-ASPP MobileNetV3-L', 'lraspp_mobilenet_v3_large', 'lraspp_mobilenetv3-large_30e_coco-voc.py',
         lambda: lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)),
        ('DeepLabV3 MobileNetV3-L', 'deeplabv3_mobilenet_v3_large',
         'deeplabv3_mobilenetv3-large_30e_coco-voc.py',
         lambda: deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True)),
    ]
    report = dict(size=args.size, threads=args.threads, runs=args.runs, device=str(device),
                  torch=torch.__version__, models={})
    for title, arch, config, make in pairs:
        reference = make().eval().to(device)
        ours = build_model(REPO / 'configs' / config, device=device)
        ours.load_state_dict(WEIGHT_CONVERTERS[arch](reference.state_dict()))
        with torch.inference_mode():
            diff = float((ours(x) - reference(x)['out']).abs().max())
        # torchvision runs its auxiliary FCN head in eval mode too; drop it so both do the same work
        if getattr(reference, 'aux_classifier', None) is not None:
            reference.aux_classifier = None

        def run_ours(m=ours):
            m(x)
            sync()

        def run_theirs(m=reference):
            m(x)
            sync()
        timing = time_interleaved(dict(ours=run_ours, torchvision=run_theirs), args.runs, args.warmup)
        timing['ratio_ours_over_torchvision'] = timing['ours']['median_ms'] / timing['torchvision']['median_ms']
        timing['ratio_of_minima'] = timing['ours']['min_ms'] / timing['torchvision']['min_ms']
        timing['max_abs_logit_diff'] = diff
        timing['params'] = count_parameters(ours)
        report['models'][title] = timing
    v2 = build_model(REPO / 'configs' / 'deeplabv3_mobilenetv2_30k_voc-aug.py', device=device)

    def run_v2():
        v2(x)
        sync()
    report['models']['Mobile DeepLabv3 MobileNetV2'] = dict(
        ours=time_calls(run_v2, args.runs, args.warmup), params=count_parameters(v2))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"batch 1, {args.size}x{args.size}, {args.threads} thread(s), {args.runs} runs, device {device}, "
              f"torch {torch.__version__}")
        print('median (min) ms; ours/tv = ratio of medians (ratio of minima, less sensitive to machine load)')
        print(f"{'model':30s} {'params':>10s} {'ours ms':>15s} {'torchvision ms':>15s} {'ours/tv':>15s} "
              f"{'max|diff|':>9s}")
        for title, r in report['models'].items():
            tv = r.get('torchvision')
            ours_s = f"{r['ours']['median_ms']:.1f} ({r['ours']['min_ms']:.1f})"
            tv_s = f"{tv['median_ms']:.1f} ({tv['min_ms']:.1f})" if tv else '-'
            ratio = (f"{r['ratio_ours_over_torchvision']:.3f} ({r['ratio_of_minima']:.3f})" if tv else '-')
            diff = f"{r['max_abs_logit_diff']:.1e}" if tv else '-'
            print(f"{title:30s} {r['params']:>10,d} {ours_s:>15s} {tv_s:>15s} {ratio:>15s} {diff:>9s}")
    return report


if __name__ == '__main__':
    run_cli(main)
