#!/usr/bin/env python
"""Evaluate a checkpoint on a config's test set and print the benchmark's metrics."""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import tempfile

from mmengine.config import DictAction
from mmengine.runner import Runner

import data  # noqa: F401
import tasks  # noqa: F401
from tasks import build_model, load_config
from tasks.cli import check_config_paths, group_per_class, json_safe, positive_int, require_checkpoint, require_file
from tasks.distributed import (LAUNCHERS, broadcast_object, check_eval_samplers, configure_distributed,
                               default_backend, init_distributed, is_main_process, shutdown_distributed)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (ours or a Runner checkpoint); optional '
                        'with --onnx')
    parser.add_argument('--onnx', help='evaluate this ONNX file of the config instead (tools/export.py, '
                        'tools/quantize.py output) run by onnxruntime, with the same pre/post-processing and evaluator')
    parser.add_argument('--work-dir', help='folder for the logs (default: a temporary folder)')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--threads', type=positive_int, help='torch CPU threads')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='none: one process; pytorch: started by torchrun; slurm: started by srun (results of '
                             'all processes are gathered: the metrics equal one process\'s)')
    parser.add_argument('--dist-backend', choices=('nccl', 'gloo'),
                        help='process-group backend (default: nccl with CUDA, gloo on CPU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, e.g. test_dataloader.dataset.data_root=DIR')
    args = parser.parse_args(argv)
    if not args.checkpoint and not args.onnx:
        parser.error('give a CHECKPOINT or --onnx FILE')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    # every check on the inputs runs before the Runner is built (and prints its environment dump)
    cfg = load_config(require_file(args.config, 'config file'))
    if args.checkpoint:
        require_checkpoint(args.checkpoint, 'checkpoint', '--onnx FILE')
    cfg.merge_from_dict(args.cfg_options)
    if args.onnx:
        from tasks.onnx_backend import ort_session
        ort_session(require_file(args.onnx, 'ONNX file'))  # an unreadable ONNX file fails here
    if args.checkpoint:
        build_model(cfg, args.checkpoint)  # an unreadable, refused or ill-fitting checkpoint fails here, strictly
    check_config_paths(cfg, ('test_dataloader', 'test_evaluator'), f'config {args.config}')
    backend = args.dist_backend or default_backend()
    _, world_size = init_distributed(args.launcher, backend)
    configure_distributed(cfg, args.launcher, backend)
    if world_size > 1:
        check_eval_samplers(cfg, keys=('test_dataloader',))
    cfg.work_dir = args.work_dir or broadcast_object(
        tempfile.mkdtemp(prefix='mobilevision_test_') if is_main_process() else None)
    cfg.load_from = args.checkpoint or None
    cfg.resume = False
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
        cfg.pop(key, None)  # testing needs no training data
    runner = Runner.from_cfg(cfg)
    if args.onnx:  # the network in onnxruntime; data, pre/post-processing and evaluator unchanged
        from tasks.onnx_backend import use_onnxruntime
        max_det = use_onnxruntime(getattr(runner.model, 'module', runner.model), args.onnx, args.threads).onnx_max_det
        if max_det is not None and max_det < 100:  # COCO's AP and AR count up to 100 detections per image
            import logging
            from mmengine.logging import print_log
            print_log(f'{args.onnx} keeps at most {max_det} detections per image (NMS in the graph), fewer '
                      f'than the 100 COCO evaluation counts: recall and AP come out lower than the model\'s; export '
                      f'with --max-det 100 or more to evaluate', logger='current', level=logging.WARNING)
    metrics = runner.test()
    classes = (getattr(runner.test_dataloader.dataset, 'metainfo', None) or {}).get('classes') or ()
    metrics = json_safe(group_per_class(metrics, classes))  # NaN -> null, per-class entries keyed by class name
    text = json.dumps(metrics, indent=2, allow_nan=False)
    main_process = is_main_process()
    shutdown_distributed()
    if not main_process:
        return metrics
    print(text)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return metrics


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
