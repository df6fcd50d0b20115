#!/usr/bin/env python
"""Convert a torchvision checkpoint (a state dict) into one of our models' checkpoints.

Every source tensor must be used and the result must fit our model of that architecture exactly (keys and shapes;
the class count is read from the source), otherwise nothing is written and the error names the keys.
The result is ``{'state_dict': ..., 'meta': {...}}`` and loads with ``tasks.build_model(config, DST)`` (or as a
backbone's ``init_weights(DST)``). The source is read with ``weights_only=True``: nothing in it can run code.
"""
from __future__ import annotations

import argparse
import os.path as osp

import data  # noqa: F401
import tasks  # noqa: F401  (task packages register their converters)
from backbones.checkpoint_io import safe_load, state_dict_of
from backbones.converters import CONVERTER_TARGETS, WEIGHT_CONVERTERS, convert_state_dict
from tasks import build_model
from tasks.cli import require_file
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
    require_file(args.src, 'source checkpoint')
    source = state_dict_of(safe_load(args.src))
    expected = None
    if args.arch in CONVERTER_TARGETS:  # the model the result must fit, key for key and shape for shape
        expected = build_model(dict(default_scope='mobilevision', model=CONVERTER_TARGETS[args.arch](source)))
        expected = expected.state_dict()
    converted = convert_state_dict(args.arch, source, args.src, expected)
    atomic_torch_save({'state_dict': converted, 'meta': {'converted_from': osp.basename(args.src),
                                                         'arch': args.arch}}, args.dst)
    print(f'{args.arch}: {len(source)} tensors in {args.src} -> {len(converted)} tensors in {args.dst}')
    return converted


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
