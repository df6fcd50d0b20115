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
from backbones.checkpoint_io import safe_load
from tasks import load_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file (ours or a Runner checkpoint)')
    parser.add_argument('--work-dir', help='folder for the logs (default: a temporary folder)')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, e.g. test_dataloader.dataset.data_root=DIR')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist')
    safe_load(args.checkpoint)  # a refused or unreadable checkpoint fails here, before the Runner starts
    cfg = load_config(args.config)
    cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or tempfile.mkdtemp(prefix='mobilevision_test_')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
        cfg.pop(key, None)  # testing needs no training data
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    metrics = {k: float(v) if isinstance(v, (int, float)) else v for k, v in metrics.items()}
    print(json.dumps(metrics, indent=2))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=2)
    return metrics


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
