#!/usr/bin/env python
"""Strip a training checkpoint to what inference needs (weights and a little metadata) for shipping.

Drops the optimizer, scheduler and log-history state; keeps ``state_dict`` and ``meta`` (epoch, iteration,
config, seed). Prints the SHA-256 of the result. Reads with ``weights_only=True``; writes atomically.
"""
from __future__ import annotations

import argparse
import hashlib
import os.path as osp

import torch

import tasks  # noqa: F401
from backbones.checkpoint_io import safe_load
from tasks.checkpoint import atomic_torch_save
from tasks.cli import require_file


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='training checkpoint (e.g. work_dirs/<cfg>/epoch_500.pth)')
    parser.add_argument('dst', help='the checkpoint to ship')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    checkpoint = safe_load(require_file(args.src, 'checkpoint'))
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get('state_dict'), dict):
        raise ValueError(f'checkpoint {args.src} has no state_dict (not a training checkpoint)')
    if not any(isinstance(v, torch.Tensor) for v in checkpoint['state_dict'].values()):
        raise ValueError(f'checkpoint {args.src} holds no tensors')
    meta = {k: v for k, v in checkpoint.get('meta', {}).items()
            if k in ('epoch', 'iter', 'seed', 'experiment_name', 'mmengine_version', 'time', 'cfg')}
    atomic_torch_save({'state_dict': checkpoint['state_dict'], 'meta': meta}, args.dst)
    with open(args.dst, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print(f'{args.dst}: {osp.getsize(args.dst) / 1024:.1f} KB, sha256 {digest}')
    return digest


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
