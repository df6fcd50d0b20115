#!/usr/bin/env python
"""Convert a torchvision checkpoint (a state dict) into one of our models' checkpoints.

The result is ``{'state_dict': ..., 'meta': {...}}`` and loads with ``tasks.build_model(config, DST)`` (or as a
backbone's ``init_weights(DST)``). The source is read with ``weights_only=True``: nothing in it can run code.
"""
from __future__ import annotations

import argparse
import os.path as osp

import data  # noqa: F401
import tasks  # noqa: F401  (task packages register their converters)
from backbones.checkpoint_io import safe_load, state_dict_of
from backbones.converters import WEIGHT_CONVERTERS
from tasks.checkpoint import atomic_torch_save


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', required=True, choices=sorted(WEIGHT_CONVERTERS),
                        help='the torchvision architecture the checkpoint belongs to')
    parser.add_argument('src', help='torchvision checkpoint (.pth state dict)')
    parser.add_argument('dst', help='our checkpoint to write')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.src):
        raise SystemExit(f'source checkpoint {args.src} does not exist')
    source = state_dict_of(safe_load(args.src))
    converted = WEIGHT_CONVERTERS[args.arch](source)
    atomic_torch_save({'state_dict': converted, 'meta': {'converted_from': osp.basename(args.src),
                                                         'arch': args.arch}}, args.dst)
    print(f'{args.arch}: {len(source)} tensors in {args.src} -> {len(converted)} tensors in {args.dst}')
    return converted


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
