#!/usr/bin/env python
"""Parameters, multiply-adds and batch-1 CPU latency of a config's model.

MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on the tensor mode (convolutions and matrix
products; MACs = FLOPs / 2). Latency is the median and 90th percentile of ``--runs`` timed calls after
``--warmup`` untimed ones, for the tensor mode and for the whole predict path (data preprocessor, network and
post-processing on a random input of the same size).

``--memory`` measures instead the peak resident set size of the predict path: a fresh child process (spawned, so
nothing of this process counts) builds the model, runs the predict path once on a random input of ``--shape`` and
reports its own peak RSS (``VmHWM``, see ``tasks.profiling.peak_rss_mb``) before and after the call.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Optional, Sequence

import torch

import data  # noqa: F401
import tasks  # noqa: F401
from tasks import build_model, load_config
from tasks.cli import input_shape, non_negative_int, positive_int, require_checkpoint, require_file
from tasks.profiling import count_macs, count_parameters, predict_path, random_sample, time_calls


def benchmark(config, shape: Optional[Sequence[int]] = None, runs: int = 50, warmup: int = 5,
              threads: Optional[int] = None, predict: bool = True, fuse: bool = False,
              onnx: Optional[str] = None, checkpoint: Optional[str] = None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    cfg = load_config(require_file(os.fspath(config), 'config file') if isinstance(config, (str, os.PathLike))
                      else config)
    shape = input_shape(cfg, shape, config)
    model = build_model(cfg, require_checkpoint(checkpoint, 'checkpoint', '--backend onnxruntime --onnx FILE')
                        if checkpoint else None)
    example = torch.randn(1, *shape)
    report = dict(config=str(config), input_shape=[1, *shape], threads=torch.get_num_threads(),
                  params=count_parameters(model), macs=count_macs(lambda: model(example, mode='tensor')))
    if fuse:  # Conv+BN folding (tasks.fuse); MACs and parameters above are the model's own
        tasks.fuse(model, channels_last=True)  # NHWC weights: measured faster here (benchmarks/deploy.py)
        report['fused'] = True
    if onnx:  # the network in onnxruntime, pre/post-processing in Python (tasks.onnx_backend)
        from tasks.onnx_backend import use_onnxruntime
        use_onnxruntime(model, require_file(onnx, 'ONNX file'), torch.get_num_threads())
        report['backend'] = 'onnxruntime'
        if getattr(model, 'onnx_max_det', None) is not None:  # --with-nms file: the tensor mode includes NMS
            report['nms_in_graph_max_det'] = model.onnx_max_det
    report['tensor'] = time_calls(lambda: model(example, mode='tensor'), runs, warmup)
    if predict:
        sample = random_sample(shape)
        from data.datasets import build_pipeline
        pipeline = build_pipeline(cfg.get('infer_pipeline', []))
        full_path = predict_path(model, pipeline, sample)
        try:
            report['predict'] = time_calls(full_path, runs, warmup)
        except Exception as err:  # report what could not be timed rather than hide it
            report['predict'] = dict(error=f'{type(err).__name__}: {err}')
    report['fps_tensor'] = report['tensor']['fps']
    return report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', help="input shape without batch (default: the config's "
                        'benchmark_shape), e.g. 3 224 224')
    parser.add_argument('--runs', type=positive_int, default=50, help='timed runs')
    parser.add_argument('--warmup', type=non_negative_int, default=5, help='untimed runs first')
    parser.add_argument('--threads', type=positive_int, help='torch CPU threads (default: torch default)')
    parser.add_argument('--no-predict', action='store_true', help='time the tensor mode only')
    parser.add_argument('--fuse', action='store_true', help='fold BatchNorms into convolutions first, channels-last '
                        'weights (tasks.fuse)')
    parser.add_argument('--backend', choices=('torch', 'onnxruntime'), default='torch',
                        help='onnxruntime: time the network of --onnx in onnxruntime (same pre/post-processing)')
    parser.add_argument('--onnx', help='the ONNX file of this config for --backend onnxruntime (tools/export.py or '
                        'tools/quantize.py output, exported at --shape or with --dynamic)')
    parser.add_argument('--checkpoint', help='weights of the torch model (default random): the work of the predict '
                        "path's post-processing (e.g. how many boxes enter NMS) depends on them")
    parser.add_argument('--json', action='store_true', help='print one JSON object')
    parser.add_argument('--memory', action='store_true', help='report the peak RSS of one predict call (in a child '
                        'process) instead of parameters, MACs and latency')
    return parser.parse_args(argv)


def memory(config, shape: Optional[Sequence[int]] = None, threads: Optional[int] = None) -> dict:
    """Peak RSS of the predict path (``tasks.profiling.predict_peak_rss``) at ``shape`` or the benchmark shape."""
    from tasks.profiling import predict_peak_rss
    cfg = load_config(require_file(os.fspath(config), 'config file') if isinstance(config, (str, os.PathLike))
                      else config)
    shape = input_shape(cfg, shape, config, channels=False)  # a photo's shape: the predict path takes RGB or gray
    report = dict(config=str(config), input_shape=[1, *shape], threads=threads or torch.get_num_threads())
    report['memory'] = predict_peak_rss(config, shape, threads)
    return report


def print_memory(report: dict) -> None:
    m = report['memory']
    print(f"{report['config']}  input {'x'.join(map(str, report['input_shape']))}  threads {report['threads']}")
    print(f"  peak RSS        {m['peak_mb']:.0f} MiB (child process: imports, model, input and one predict call)")
    print(f"  before predict  {m['before_predict_mb']:.0f} MiB;  the predict call adds {m['predict_mb']:.0f} MiB "
          f"({m['seconds']:.1f} s)")


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.memory:
        report = memory(args.config, args.shape, args.threads)
        if args.json:
            print(json.dumps(report))
        else:
            print_memory(report)
        return report
    if (args.backend == 'onnxruntime') != bool(args.onnx):
        raise ValueError('--backend onnxruntime needs --onnx FILE (and --onnx needs --backend onnxruntime)')
    report = benchmark(args.config, args.shape, args.runs, args.warmup, args.threads, not args.no_predict,
                       args.fuse, args.onnx, args.checkpoint)
    if args.json:
        print(json.dumps(report))
        return report
    print(f"{report['config']}  input {'x'.join(map(str, report['input_shape']))}  threads {report['threads']}")
    print(f"  parameters      {report['params']:,} ({report['params'] / 1e6:.2f} M)")
    print(f"  multiply-adds   {report['macs']:,} ({report['macs'] / 1e9:.3f} G)")
    if 'nms_in_graph_max_det' in report:
        print(f"  NMS in the graph: the tensor mode is the whole ONNX file (decoding and NMS included), at most "
              f"{report['nms_in_graph_max_det']} detections")
    t = report['tensor']
    print(f"  tensor mode     median {t['median_ms']:.2f} ms  p90 {t['p90_ms']:.2f} ms  "
          f"({report['fps_tensor']:.1f} frames/s)")
    if 'predict' in report:
        p = report['predict']
        if 'error' in p:
            print(f"  predict path    not timed: {p['error']}")
        else:
            print(f"  predict path    median {p['median_ms']:.2f} ms  p90 {p['p90_ms']:.2f} ms")
    return report


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
