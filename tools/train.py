#!/usr/bin/env python
"""Train a model from a config with mmengine's Runner.

Checkpoints are written atomically; ``--resume`` continues from the newest readable checkpoint of the work
folder (or the one given), loaded with ``weights_only=True`` (see tasks/checkpoint.py). Checkpoints also hold
every random generator (tasks/rng_state.py), so a resumed run repeats the uninterrupted one.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.runner import Runner

import tasks  # noqa: F401  (registers models and the checkpoint handling)
import data  # noqa: F401  (registers datasets, transforms, metrics)
from tasks import load_config
from tasks.checkpoint import find_resumable_checkpoint
from tasks.rng_state import SEED_WORKER


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file, e.g. configs/espcn_x3_200e_t91.py')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints (default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or (no value) from the newest checkpoint in the work folder')
    parser.add_argument('--load-from', help='initialise the model from a checkpoint (no optimizer state)')
    parser.add_argument('--threads', type=int, help='torch CPU threads')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, e.g. train_cfg.max_epochs=10 optim_wrapper.optimizer.lr=1e-3')
    return parser.parse_args(argv)


def add_required_hooks(cfg) -> None:
    """Hooks every training run needs: log history stored as plain arrays (checkpoints load with
    ``weights_only=True``) and the random generators saved in checkpoints (exact resume)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    for name in ('PlainLogHistoryHook', 'RNGStateHook'):
        if not any(h.get('type') in (name, f'mobilevision.{name}') for h in hooks):
            hooks.append(dict(type=name))
    cfg.custom_hooks = hooks


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.load_from:
        cfg.load_from = args.load_from
    if args.resume:
        checkpoint = (find_resumable_checkpoint(cfg.work_dir) if args.resume == 'auto' else args.resume)
        if checkpoint is None:
            print(f'no checkpoint to resume from in {cfg.work_dir}; training from the start')
        else:
            if not osp.isfile(checkpoint):
                raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
            print(f'resuming from {checkpoint}')
            cfg.resume, cfg.load_from = True, checkpoint
    add_required_hooks(cfg)
    if cfg.get('train_dataloader') is not None and 'worker_init_fn' not in cfg.train_dataloader:
        # worker seeds that change every epoch and are reproduced on resume (mmengine's repeat every epoch)
        cfg.train_dataloader.worker_init_fn = dict(type=SEED_WORKER)
    os.makedirs(cfg.work_dir, exist_ok=True)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
