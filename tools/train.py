#!/usr/bin/env python
"""Train a model from a config with mmengine's Runner, in one process or several (DDP).

Checkpoints are written atomically by rank 0; ``--resume`` continues from the newest readable checkpoint of the
work folder (or the one given), loaded with ``weights_only=True`` (see tasks/checkpoint.py). Checkpoints also hold
every random generator (tasks/rng_state.py), so a resumed run repeats the uninterrupted one.

Several processes (tasks/distributed.py; docs/training.md):
    python -m torch.distributed.run --nproc_per_node=8 tools/train.py CONFIG --launcher pytorch
    srun --ntasks-per-node=8 --gpus-per-node=8 python tools/train.py CONFIG --launcher slurm
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.runner import Runner

import tasks  # noqa: F401  (registers models and the checkpoint handling)
import data  # noqa: F401  (registers datasets, transforms, metrics)
from tasks import build_model, load_config
from tasks.cli import check_config_paths, positive_int, require_file
from tasks.checkpoint import find_resumable_checkpoint
from tasks.distributed import (LAUNCHERS, broadcast_object, check_eval_samplers, configure_distributed,
                               default_backend, init_distributed, is_main_process, shutdown_distributed)
from tasks.rng_state import SEED_WORKER
import tasks.schedule_check  # noqa: F401,E402  (registers ScheduleCheckHook)
from tasks.training_options import AMP_DTYPES, batch_summary, enable_amp, enable_auto_scale_lr, enable_ema


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file, e.g. configs/espcn_x3_500e_t91.py')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints (default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or (no value) from the newest checkpoint in the work folder')
    parser.add_argument('--load-from', help='initialise the model from a checkpoint (no optimizer state)')
    parser.add_argument('--threads', type=positive_int, help='torch CPU threads')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='none: one process; pytorch: started by torchrun (DDP); slurm: started by srun (DDP)')
    parser.add_argument('--dist-backend', choices=('nccl', 'gloo'),
                        help='process-group backend (default: the config\'s env_cfg.dist_cfg.backend, else nccl '
                             'with CUDA and gloo on CPU)')
    parser.add_argument('--sync-bn', action='store_true',
                        help='BatchNorm statistics over all processes (torch.nn.SyncBatchNorm; GPUs only)')
    parser.add_argument('--amp', nargs='?', const='float16', choices=AMP_DTYPES, default=None,
                        help='mixed precision through mmengine\'s AmpOptimWrapper (float16 by default; CUDA only)')
    parser.add_argument('--ema', nargs='?', const=0.0002, type=float, default=None, metavar='MOMENTUM',
                        help='keep an exponential moving average of the weights (mmengine EMAHook, '
                             'MomentumAnnealingEMA); validation and the saved state_dict use it')
    parser.add_argument('--auto-scale-lr', nargs='?', const=0, type=int, default=None, metavar='BASE',
                        help='scale the lr linearly with the total batch (processes x per-process batch) against '
                             'BASE, or the config\'s auto_scale_lr.base_batch_size')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, e.g. train_cfg.max_epochs=10 optim_wrapper.optimizer.lr=1e-3')
    return parser.parse_args(argv)


def add_required_hooks(cfg) -> None:
    """Hooks every training run needs: log history stored as plain arrays (checkpoints load with
    ``weights_only=True``), the random generators saved in checkpoints (exact resume) and the learning-rate
    schedule checked against the loop and, on resume, against the checkpoint's (``tasks/schedule_check.py``)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    for name in ('PlainLogHistoryHook', 'RNGStateHook', 'ScheduleCheckHook'):
        if not any(h.get('type') in (name, f'mobilevision.{name}') for h in hooks):
            hooks.append(dict(type=name))
    cfg.custom_hooks = hooks


def resume_checkpoint(work_dir: str, requested: str) -> str | None:
    """The checkpoint to resume from, chosen by rank 0 and shared with every rank."""
    checkpoint = None
    if is_main_process():
        checkpoint = find_resumable_checkpoint(work_dir) if requested == 'auto' else requested
    return broadcast_object(checkpoint)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    cfg = load_config(require_file(args.config, 'config file'))
    cfg.merge_from_dict(args.cfg_options)
    backend = (args.dist_backend or ((cfg.get('env_cfg') or {}).get('dist_cfg') or {}).get('backend')
               or default_backend())
    # before the Runner: its own set-up calls torch.cuda.set_device and cannot run on CPU
    _, world_size = init_distributed(args.launcher, backend,
                                     ((cfg.get('env_cfg') or {}).get('dist_cfg') or {}).get('timeout'))
    configure_distributed(cfg, args.launcher, backend, sync_bn=args.sync_bn)
    if world_size > 1:
        check_eval_samplers(cfg)
    if args.amp:
        enable_amp(cfg, args.amp)
    if args.ema is not None:
        enable_ema(cfg, args.ema)
    if args.auto_scale_lr is not None:
        enable_auto_scale_lr(cfg, args.auto_scale_lr or None, config_name=f'config {args.config}')
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.load_from:
        cfg.load_from = args.load_from
    if args.resume:
        checkpoint = resume_checkpoint(cfg.work_dir, args.resume)
        if checkpoint is None:
            if is_main_process():
                print(f'no checkpoint to resume from in {cfg.work_dir}; training from the start')
        else:
            if not osp.isfile(checkpoint):
                raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
            if is_main_process():
                print(f'resuming from {checkpoint}')
            cfg.resume, cfg.load_from = True, checkpoint
    # bad input ends here, with one error line, before the Runner's environment dump
    check_config_paths(cfg, ('model', 'train_dataloader', 'val_dataloader', 'val_evaluator'), f'config {args.config}')
    if args.load_from and not cfg.get('resume'):
        build_model(cfg, args.load_from)  # strict: a checkpoint that does not fit the model is named now
    add_required_hooks(cfg)
    if cfg.get('train_dataloader') is not None and 'worker_init_fn' not in cfg.train_dataloader:
        # worker seeds that change every epoch and are reproduced on resume (mmengine's repeat every epoch)
        cfg.train_dataloader.worker_init_fn = dict(type=SEED_WORKER)
    if is_main_process():
        os.makedirs(cfg.work_dir, exist_ok=True)
        if cfg.get('train_dataloader') is not None:
            print(batch_summary(cfg, world_size))
    runner = Runner.from_cfg(cfg)
    runner.train()
    shutdown_distributed()


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
