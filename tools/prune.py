#!/usr/bin/env python
"""Prune a FastDepth model's channels NetAdapt-style down to a multiply-add budget (FastDepth, section III-D).

Each iteration every layer (an additive skip's encoder and decoder layers together) proposes removing the
filters with the smallest L2 norm until it saves ``--step`` x the initial MACs; the proposal chosen by
``--criterion`` is kept and the MACs are measured again with our counter, until ``--target-macs`` is reached
(see tasks/depth/pruning.py). Writes into ``--output``:

* ``<config>_pruned.pth``: the pruned weights (``state_dict`` + ``meta`` with widths, MACs, parameters);
* ``<config>_pruned.py``: a config of the pruned widths on top of CONFIG, with ``load_from`` set to those
  weights, so ``tools/train.py`` fine-tunes it and ``tools/benchmark.py`` / ``tools/export.py`` measure it;
* ``prune_log.json``: every step (layers, widths, MACs, parameters, score).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import re
from dataclasses import asdict
from typing import List

import torch

import data  # noqa: F401
import tasks  # noqa: F401
from tasks import build_model, load_config
from tasks.checkpoint import atomic_torch_save
from tasks.cli import input_shape, positive_int, require_checkpoint, require_file
from tasks.depth.pruning import prune_fastdepth
from tasks.profiling import count_macs, count_parameters

_SUFFIX = {'': 1.0, 'K': 1e3, 'M': 1e6, 'G': 1e9}


def parse_macs(text: str) -> float:
    """'0.37G', '370M', '3.7e8' -> multiply-adds."""
    match = re.fullmatch(r'\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgG]?)\s*', str(text))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f'--target-macs must be a positive number with an optional K/M/G suffix, got {text!r}')
    return float(match.group(1)) * _SUFFIX[match.group(2).upper()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='FastDepth config (MobileNetV1 + NNConv5Decoder)')
    parser.add_argument('checkpoint', nargs='?', help='trained weights (random weights when omitted: sizes only)')
    parser.add_argument('--target-macs', required=True, help='multiply-add budget, e.g. 0.37G (the paper)')
    parser.add_argument('--output', required=True, help='folder for the pruned checkpoint, config and log')
    parser.add_argument('--shape', type=int, nargs=3, metavar=('C', 'H', 'W'),
                        help="input shape the MACs are counted at (default: the config's benchmark_shape)")
    parser.add_argument('--step', type=float, default=0.025,
                        help='MACs removed per iteration, a fraction of the initial MACs (default 0.025)')
    parser.add_argument('--divisor', type=int, default=8, help='keep widths multiples of this (default 8)')
    parser.add_argument('--min-channels', type=int, default=8, help='narrowest a layer may become (default 8)')
    parser.add_argument('--criterion', choices=('magnitude', 'distortion'), default='magnitude',
                        help='how proposals are compared: filter energy removed (data-free) or the change of '
                             'the depth output on --calib images')
    parser.add_argument('--calib', nargs='+', help='images or folders for --criterion distortion')
    parser.add_argument('--threads', type=positive_int, help='torch CPU threads')
    return parser.parse_args(argv)


def calibration_batch(cfg, model, paths: List[str]) -> torch.Tensor:
    """The images under ``paths`` through the config's ``infer_pipeline`` and the model's preprocessor."""
    from data.datasets import build_pipeline
    from data.io import list_images, read_rgb
    files: List[str] = []
    for path in paths:
        if osp.isdir(path):
            files += [str(f) for f in list_images(path)]
        elif osp.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f'calibration image {path} does not exist')
    if not files:
        raise ValueError(f'no images found in {paths}')
    pipeline = build_pipeline(cfg.get('infer_pipeline', []))
    samples = []
    for file in files:
        sample = dict(img=read_rgb(file), meta=dict(img_id=osp.basename(file), file=file))
        for transform in pipeline:
            sample = transform(sample)
        samples.append(sample)
    return model.data_preprocessor(samples, False)['inputs']


def write_config(path: str, base_config: str, widths: dict, checkpoint: str, header: List[str]) -> None:
    base = os.path.relpath(osp.abspath(base_config), osp.dirname(osp.abspath(path)))
    lines = [f'# {line}' for line in header] + [
        f'_base_ = [{base!r}]',
        f"model = dict(backbone=dict(widths={widths['backbone']!r}), head=dict(channels={widths['head']!r}))",
        f'load_from = {osp.abspath(checkpoint)!r}  # the pruned weights; fine-tune with tools/train.py',
        '']
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines))


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    target = parse_macs(args.target_macs)
    if args.checkpoint:
        require_checkpoint(args.checkpoint, 'checkpoint')
    if args.criterion == 'distortion' and not args.calib:
        raise ValueError('--criterion distortion needs --calib images')
    cfg = load_config(require_file(args.config, 'config file'))
    shape = input_shape(cfg, args.shape, args.config)
    if len(shape) != 3:
        raise ValueError(f'{args.config}: pruning counts MACs at an image shape C H W, got {list(shape)}')
    model = build_model(cfg, args.checkpoint)
    calibration = calibration_batch(cfg, model, args.calib) if args.calib else None
    params_before = count_parameters(model)
    pruned, widths, steps = prune_fastdepth(model, cfg.model.to_dict(), target, shape, step=args.step,
                                            divisor=args.divisor, min_channels=args.min_channels,
                                            criterion=args.criterion, calibration=calibration, log=print)
    example = torch.zeros(1, *shape)
    macs_before = count_macs(lambda: model(example, mode='tensor'))
    macs_after = steps[-1].macs
    params_after = count_parameters(pruned)
    os.makedirs(args.output, exist_ok=True)
    stem = osp.splitext(osp.basename(args.config))[0] + '_pruned'
    ckpt_path, cfg_path = osp.join(args.output, stem + '.pth'), osp.join(args.output, stem + '.py')
    meta = dict(pruned_from=osp.basename(args.checkpoint) if args.checkpoint else None,
                config=osp.basename(args.config), widths=widths, input_shape=list(shape),
                macs=macs_after, params=params_after, macs_before=macs_before, params_before=params_before,
                criterion=args.criterion, step=args.step)
    atomic_torch_save(dict(state_dict=pruned.state_dict(), meta=meta), ckpt_path)
    header = [f'Written by tools/prune.py from {args.config} ({args.checkpoint or "random weights"}):',
              f'{macs_before / 1e9:.4f} -> {macs_after / 1e9:.4f} GMACs and {params_before:,} -> {params_after:,} '
              f'parameters at 1x{"x".join(map(str, shape))}, {len(steps)} steps (criterion {args.criterion}).',
              f'Fine-tune: python tools/train.py {cfg_path}; measure: python tools/benchmark.py {cfg_path}']
    write_config(cfg_path, args.config, widths, ckpt_path, header)
    with open(osp.join(args.output, 'prune_log.json'), 'w') as handle:
        json.dump(dict(meta, steps=[asdict(s) for s in steps]), handle, indent=1)
    print(f'pruned {macs_before / 1e9:.4f} -> {macs_after / 1e9:.4f} GMACs, {params_before:,} -> {params_after:,} '
          f'parameters; wrote {ckpt_path} and {cfg_path}')
    return dict(meta, checkpoint=ckpt_path, config_file=cfg_path, steps=steps)


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
