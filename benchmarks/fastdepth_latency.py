#!/usr/bin/env python
"""FastDepth at 224x224: parameters, MACs (encoder / decoder), batch-1 CPU latency and frames per second.

Builds the given configs in one process with one thread count and times each network's tensor mode with
PyTorch and, with ``--onnx``, the same network exported to ONNX and run by onnxruntime. Our networks are
unpruned; the paper's pruned FastDepth has 1.34 M parameters and 0.37 GMACs and runs in 37 ms on a Jetson TX2
CPU (Wofk et al., 2019, Table 3).

    python benchmarks/fastdepth_latency.py --threads 1 --runs 30 --onnx
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import List

import numpy as np
import torch

import data  # noqa: F401
import tasks  # noqa: F401
from tasks import build_model
from tasks.cli import non_negative_int, positive_int, require_file, run_cli
from tasks.profiling import count_macs, count_parameters, time_calls

PAPER = dict(params=1.34e6, macs=0.37e9, tx2_cpu_ms=37.0)
CONFIGS = ['configs/fastdepth_mobilenetv1_20e_nyu.py', 'configs/fastdepth_mobilenetv2_20e_nyu.py']


def onnx_session(model: torch.nn.Module, example: torch.Tensor, threads: int):
    import onnxruntime as ort

    class TensorMode(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x, mode='tensor')

    path = os.path.join(tempfile.mkdtemp(), 'fastdepth.onnx')
    torch.onnx.export(TensorMode(model).eval(), (example,), path, input_names=['input'], output_names=['depth'],
                      opset_version=18, dynamo=True, external_data=False, verbose=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    with torch.no_grad():
        reference = model(example, mode='tensor').numpy()
    feed = {'input': example.numpy()}
    diff = float(np.abs(session.run(None, feed)[0] - reference).max())
    return (lambda: session.run(None, feed)), diff


def measure(config: str, threads: int, runs: int, warmup: int, with_onnx: bool) -> dict:
    model = build_model(config)
    example = torch.randn(1, 3, 224, 224)
    features = []
    report = dict(config=config, encoder=type(model.backbone).__name__,
                  params=count_parameters(model),
                  encoder_params=count_parameters(model.backbone),
                  macs=count_macs(lambda: model(example, mode='tensor')),
                  encoder_macs=count_macs(lambda: features.append(model.backbone(example))))
    report['decoder_macs'] = report['macs'] - report['encoder_macs']
    with torch.no_grad():
        report['torch'] = time_calls(lambda: model(example, mode='tensor'), runs, warmup)
        report['torch_encoder'] = time_calls(lambda: model.backbone(example), runs, warmup)
    if with_onnx:
        run, diff = onnx_session(model, example, threads)
        report['onnxruntime'] = time_calls(run, runs, warmup)
        report['onnxruntime']['max_abs_diff_vs_torch'] = diff
    return report


def main(argv: List[str] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='*', default=CONFIGS, help='FastDepth config files (default: '
                        'the MobileNetV1 and MobileNetV2 ones)')
    parser.add_argument('--threads', type=positive_int, default=1, help='torch and onnxruntime threads (default 1)')
    parser.add_argument('--runs', type=positive_int, default=30, help='timed runs (default 30)')
    parser.add_argument('--warmup', type=non_negative_int, default=5, help='untimed runs first (default 5)')
    parser.add_argument('--onnx', action='store_true', help='also time onnxruntime on the exported network')
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    args = parser.parse_args(argv)
    for config in args.configs:
        require_file(config, 'config file')
    torch.set_num_threads(args.threads)
    reports = [measure(c, args.threads, args.runs, args.warmup, args.onnx) for c in args.configs]
    if args.json:
        print(json.dumps(reports))
        return reports
    print(f'input 1x3x224x224, {args.threads} thread(s), {args.runs} timed runs; load average '
          f'{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores')
    print(f"paper (pruned FastDepth): {PAPER['params'] / 1e6:.2f} M parameters, {PAPER['macs'] / 1e9:.2f} GMACs, "
          f"{PAPER['tx2_cpu_ms']:.0f} ms on a TX2 CPU")
    for r in reports:
        print(f"{r['encoder']:12s} (unpruned) {r['params'] / 1e6:.2f} M params ({r['encoder_params'] / 1e6:.2f} M "
              f"encoder), {r['macs'] / 1e9:.3f} GMACs ({r['encoder_macs'] / 1e9:.3f} encoder + "
              f"{r['decoder_macs'] / 1e9:.3f} decoder) = {r['macs'] / PAPER['macs']:.2f}x the pruned MACs")
        for key in ('torch', 'torch_encoder', 'onnxruntime'):
            if key in r:
                t = r[key]
                print(f"    {key:14s} median {t['median_ms']:7.2f} ms  p90 {t['p90_ms']:7.2f} ms  "
                      f"{t['fps']:6.1f} frames/s  (CPU time {t['cpu_ms']:.2f} ms/frame)")
    return reports


if __name__ == '__main__':
    run_cli(main)
