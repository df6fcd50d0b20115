#!/usr/bin/env python
"""Score prediction files written by any tool against ground truth, offline.

``--metric`` picks a scorer registered in ``data.OFFLINE_SCORERS``; each adds its own options (see
``tools/evaluate.py --metric NAME --help``). ``--json`` prints one JSON object of the metrics on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys

import data  # noqa: F401  (registers the scorers)
from data import OFFLINE_SCORERS


def build_parser(metric=None) -> argparse.ArgumentParser:
    names = sorted(OFFLINE_SCORERS.module_dict)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--metric', required=True, choices=names, help='what to score')
    parser.add_argument('--json', action='store_true', help='print the metrics as one JSON object')
    if metric in names:
        OFFLINE_SCORERS.get(metric).add_arguments(parser)
    return parser


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--metric')
    known, _ = pre.parse_known_args(argv)
    args = build_parser(known.metric).parse_args(argv)
    metrics = OFFLINE_SCORERS.get(args.metric).score(args)
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            if isinstance(value, dict):
                continue
            print(f'{key}: {value:.4f}' if isinstance(value, float) else f'{key}: {value}')
    return metrics


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
