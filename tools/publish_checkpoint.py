#!/usr/bin/env python
"""Strip a training checkpoint to what inference needs (weights and a little metadata) for shipping.

Drops the optimizer, scheduler and log-history state; keeps ``state_dict`` and ``meta`` (epoch, iteration,
config, seed). Prints the SHA-256 of the result. Reads with ``weights_only=True``; writes atomically.
"""
from __future__ import annotations

import argparse
import hashlib
import os.path as osp

import tasks  # noqa: F401
from backbones.checkpoint_io import safe_load
from tasks.checkpoint import atomic_torch_save


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='training checkpoint (e.g. work_dirs/<cfg>/epoch_500.pth)')
    parser.add_argument('dst', help='the checkpoint to ship')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    if not osp.isfile(args.src):
        raise SystemExit(f'checkpoint {args.src} does not exist')
    checkpoint = safe_load(args.src)
    if 'state_dict' not in checkpoint:
        raise SystemExit(f'{args.src} has no state_dict')
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
