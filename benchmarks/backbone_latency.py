#!/usr/bin/env python
"""Batch-1 CPU latency of every backbone as a ratio to MobileNetV3-Large, in PyTorch eager and onnxruntime.

One process, one run: for each input size (224, 320) and thread count (1, 2) all backbones and both runtimes are
timed in turns (``tasks.profiling.time_interleaved``: the order alternates every round, so load changes hit all
alike). Each backbone runs up to its deepest default map (stride 32), random weights, eval mode. onnxruntime gets
the TorchScript-exported ONNX graph of the same module (static shape), ``intra_op_num_threads`` = the thread count.
The table also gives parameters and MACs at 224 of the ImageNet classifier configs and the published top-1.

    python benchmarks/backbone_latency.py [--runs 20] [--sizes 224 320] [--threads 1 2] [--json OUT.json] [--markdown]

On a machine shared with other jobs run it with ``OMP_WAIT_POLICY=PASSIVE``: PyTorch's OpenMP threads otherwise
spin-wait for a core another process holds, and two-thread calls took 1.4-4.4 s instead of tens of ms here.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import data  # noqa: E402,F401
import tasks  # noqa: E402,F401
from backbones import BACKBONES  # noqa: E402
from tasks import build_model  # noqa: E402
from tasks.cli import non_negative_int, positive_int, run_cli  # noqa: E402
from tasks.profiling import count_macs, count_parameters, time_interleaved  # noqa: E402

# name -> (backbone config, classifier config or None, published ImageNet top-1 or None, source of the top-1)
MODELS = {
    'MobileNetV3-Large': (dict(type='MobileNetV3', arch='large'), 'classifier_mobilenetv3-large_1x_imagenet', 75.2,
                          'MobileNetV3 paper, Table 3'),
    'MobileNetV2 1.0': (dict(type='MobileNetV2'), 'classifier_mobilenetv2_1x_imagenet', 72.0,
                        'MobileNetV2 paper, Table 4'),
    'MobileDet-CPU': (dict(type='MobileDet', arch='cpu'), None, None, 'detection only (SSDLite COCO 24.0 mAP)'),
    'FasterNet-T0': (dict(type='FasterNet', arch='fasternet_t0'), 'classifier_fasternet-t0_imagenet', 71.9,
                     'FasterNet paper'),
    'FasterNet-T1': (dict(type='FasterNet', arch='fasternet_t1'), 'classifier_fasternet-t1_imagenet', 76.2,
                     'FasterNet paper'),
    'FasterNet-T2': (dict(type='FasterNet', arch='fasternet_t2'), 'classifier_fasternet-t2_imagenet', 78.9,
                     'FasterNet paper'),
    'InceptionNeXt-atto': (dict(type='InceptionNeXt', arch='inception_next_atto'),
                           'classifier_inception-next-atto_imagenet', 75.3, 'InceptionNeXt paper'),
    'MobileNetV4-Conv-S': (dict(type='MobileNetV4', arch='mobilenetv4_conv_small'),
                           'classifier_mobilenetv4-conv-small_imagenet', 73.8, 'MobileNetV4 paper'),
    'MobileNetV4-Conv-M': (dict(type='MobileNetV4', arch='mobilenetv4_conv_medium'),
                           'classifier_mobilenetv4-conv-medium_imagenet', 79.9, 'MobileNetV4 paper (256 px)'),
}
REFERENCE = 'MobileNetV3-Large'


def deepest_only(cfg: dict) -> dict:
    """The backbone with only its deepest default map as output (what every task runs through)."""
    probe = BACKBONES.build(dict(cfg))
    return dict(cfg, out_indices=(probe.feature_names[probe.out_indices[-1]],))


class LastMap(torch.nn.Module):
    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)[-1]


def export_onnx(model: torch.nn.Module, size: int, path: str) -> None:
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), path, opset_version=17, dynamo=False,
                      input_names=['x'], output_names=['y'])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--runs', type=positive_int, default=20, help='timed rounds (default 20)')
    parser.add_argument('--warmup', type=non_negative_int, default=3, help='untimed rounds first (default 3)')
    parser.add_argument('--sizes', type=positive_int, nargs='+', default=[224, 320],
                        help='square input sizes (default 224 320)')
    parser.add_argument('--threads', type=positive_int, nargs='+', default=[1, 2],
                        help='thread counts, torch and onnxruntime alike (default 1 2)')
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS), metavar='MODEL',
                        help='subset of: ' + ', '.join(MODELS))
    parser.add_argument('--json', help='write the results here')
    parser.add_argument('--markdown', action='store_true', help='print the docs table')
    args = parser.parse_args(argv)
    import onnxruntime as ort

    if REFERENCE not in args.models:
        args.models = [REFERENCE] + args.models
    torch.manual_seed(0)
    nets, sizes = {}, {}
    for name in args.models:
        backbone_cfg, classifier, top1, source = MODELS[name]
        nets[name] = LastMap(BACKBONES.build(deepest_only(backbone_cfg))).eval()
        entry = dict(top1=top1, top1_source=source,
                     backbone_params=count_parameters(nets[name]),
                     backbone_macs_224=count_macs(lambda: nets[name](torch.zeros(1, 3, 224, 224))))
        if classifier:
            model = build_model(str(REPO / 'configs' / f'{classifier}.py'))
            entry.update(params=count_parameters(model),
                         macs_224=count_macs(lambda: model._forward(torch.zeros(1, 3, 224, 224))))
        sizes[name] = entry
    results = {'models': sizes, 'latency': {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            paths = {}
            for name, net in nets.items():
                paths[name] = os.path.join(tmp, f'{len(paths)}_{size}.onnx')
                export_onnx(net, size, paths[name])
            x = torch.randn(1, 3, size, size)
            feed = {'x': x.numpy()}
            for threads in args.threads:
                torch.set_num_threads(threads)
                options = ort.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
                sessions = {n: ort.InferenceSession(p, options, providers=['CPUExecutionProvider'])
                            for n, p in paths.items()}
                fns = {}
                for name in nets:
                    fns[(name, 'torch')] = (lambda n=name: nets[n](x))
                    fns[(name, 'onnxruntime')] = (lambda n=name: sessions[n].run(None, feed))
                stats = time_interleaved(fns, runs=args.runs, warmup=args.warmup)
                key = f'{size}px_{threads}t'
                results['latency'][key] = {
                    f'{n}|{rt}': dict(s, ratio=s['median_ms'] / stats[(REFERENCE, rt)]['median_ms'])
                    for (n, rt), s in stats.items()}
                print(f'{key}: ' + ', '.join(f'{n} {rt} {s["median_ms"]:.1f} ms' for (n, rt), s in stats.items()),
                      file=sys.stderr)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    if args.markdown:
        print(markdown(results))
    return results


def markdown(results: dict) -> str:
    keys = list(results['latency'])
    head = ['backbone', 'params (classifier)', 'MACs @224 (classifier)', 'top-1 (published)']
    head += [f'{k.replace("_", " ")} {rt}' for k in keys for rt in ('torch', 'ORT')]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for name, m in results['models'].items():
        params = f'{m["params"] / 1e6:.2f} M' if 'params' in m else f'{m["backbone_params"] / 1e6:.2f} M (backbone)'
        macs = (f'{m["macs_224"] / 1e9:.3f} G' if 'macs_224' in m
                else f'{m["backbone_macs_224"] / 1e9:.3f} G (backbone)')
        top1 = f'{m["top1"]:.1f}' if m['top1'] is not None else '—'
        row = [name, params, macs, top1]
        for k in keys:
            for rt in ('torch', 'onnxruntime'):
                s = results['latency'][k][f'{name}|{rt}']
                row.append(f'{s["ratio"]:.2f}x ({s["median_ms"]:.1f} ms)')
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    run_cli(main)
