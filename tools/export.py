#!/usr/bin/env python
"""Export a model's raw outputs (``mode='tensor'``) to ONNX and check onnxruntime against PyTorch.

The check feeds the same random input to both and prints the largest absolute difference per output; it fails
(exit 1) when any output differs by more than ``--rtol`` relative to that output's largest magnitude.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import nn

import data  # noqa: F401
import tasks  # noqa: F401
from tasks import build_model, load_config
from tasks.cli import input_shape, output_file, positive_int, require_checkpoint, require_file


class TensorMode(nn.Module):
    """Wrap a task model so ``forward(x)`` is its tensor mode with outputs flattened to a tuple."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return tuple(flatten_outputs(self.model(x, mode='tensor')))


def flatten_outputs(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in flatten_outputs(out[k])]
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in flatten_outputs(item)]
    raise TypeError(f'tensor mode returned a {type(out).__name__}; expected tensors')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (random weights when omitted)')
    parser.add_argument('--output', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs='+', help="input shape without batch, e.g. 3 320 320 "
                        "(default: the config's benchmark_shape)")
    parser.add_argument('--opset', type=int, default=18, help='ONNX opset version')
    parser.add_argument('--legacy', action='store_true', help='use the TorchScript-based exporter')
    parser.add_argument('--dynamic', action='store_true', help='dynamic batch and spatial size')
    parser.add_argument('--rtol', type=float, default=1e-4, help='tolerated difference relative to output scale')
    parser.add_argument('--fuse', action='store_true', help='fold BatchNorms into convolutions first (tasks.fuse; '
                        'onnxruntime folds them too, the file is the same size either way)')
    parser.add_argument('--with-nms', action='store_true', help='detection: decoding and class-wise NMS in the graph '
                        '(outputs boxes, scores, labels, num_dets; batch 1, fixed size); checked against predict')
    parser.add_argument('--max-det', type=positive_int, default=100, help='--with-nms: detections per image (padded)')
    return parser.parse_args(argv)


EXPORT_EXTRA = "pip install -e '.[export]'"


def require_export_packages(legacy: bool = False) -> None:
    """``RuntimeError`` naming the missing ONNX packages and the extra that installs them."""
    import importlib
    needed = ['onnx', 'onnxruntime'] + ([] if legacy else ['onnxscript'])  # onnxscript: the torch.export exporter
    missing = []
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise RuntimeError(f'ONNX export needs the package(s) {", ".join(missing)}, which are not installed: '
                           f'install the export extra with {EXPORT_EXTRA}')


def export(model: nn.Module, shape: Sequence[int], output: str, opset: int = 18, dynamic: bool = False,
           legacy: bool = False, wrapper: Optional[nn.Module] = None):
    """Export ``wrapper`` (default: the model's tensor mode) at input ``1 x shape``; returns (input, outputs)."""
    wrapper = (wrapper if wrapper is not None else TensorMode(model)).eval()
    example = torch.randn(1, *shape)
    with torch.no_grad():
        reference = wrapper(example)
    names = [f'output{i}' for i in range(len(reference))]
    axes = None
    if dynamic:
        spatial = {0: 'batch'} | {i + 2: f'dim{i}' for i in range(len(shape) - 1)}
        axes = {'input': spatial} | {n: {0: 'batch'} for n in names}
    os.makedirs(osp.dirname(osp.abspath(output)) or '.', exist_ok=True)
    if legacy:  # the TorchScript exporter (deprecated in torch 2.9, kept for models torch.export cannot trace)
        torch.onnx.export(wrapper, (example,), output, input_names=['input'], output_names=names,
                          opset_version=opset, dynamic_axes=axes, dynamo=False)
    else:  # the torch.export-based exporter; weights stored inside the .onnx file
        torch.onnx.export(wrapper, (example,), output, input_names=['input'], output_names=names,
                          opset_version=opset, dynamic_axes=axes, dynamo=True, external_data=False,
                          verbose=False)
    return example, reference


def check_with_onnxruntime(path: str, example: torch.Tensor, reference: Sequence[torch.Tensor],
                           rtol: float = 1e-4) -> List[float]:
    """Largest absolute difference per output; raises ``AssertionError`` past ``rtol`` x output scale."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outputs = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    diffs = []
    for i, (ours, ref) in enumerate(zip(outputs, reference)):
        ref = ref.numpy()
        if ours.shape != ref.shape:
            raise AssertionError(f'output {i}: onnxruntime shape {ours.shape} != torch shape {ref.shape}')
        diff = float(np.abs(ours - ref).max()) if ref.size else 0.0
        scale = max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-6)
        diffs.append(diff)
        print(f'output {i} {tuple(ref.shape)}: max |onnxruntime - torch| = {diff:.3e} (relative {diff / scale:.3e})')
        if diff > rtol * scale:
            raise AssertionError(f'output {i} differs by {diff:.3e}, more than {rtol} x {scale:.3e}')
    return diffs


def export_with_nms(model: nn.Module, shape: Sequence[int], args: argparse.Namespace) -> List[float]:
    """``--with-nms``: export the detector's NMS-in-graph wrapper (``tasks.detection.nms_export.with_nms``:
    ``DetectorWithNMS`` for SSD, ``YOLODetectorWithNMS`` for YOLO) and check onnxruntime's detections against the
    model's predict path on the same input (matched by label, score and box to ``--rtol``)."""
    from tasks.detection.nms_export import match_detections, unpad, with_nms
    if args.dynamic:
        raise ValueError('--with-nms exports one fixed input size (anchors and candidate counts are constants); '
                         'drop --dynamic')
    if len(shape) != 3:
        raise ValueError(f'--with-nms needs an image shape C H W, got {list(shape)}')
    try:
        wrapper = with_nms(model, shape[1:], args.max_det)
    except TypeError as err:  # not a detector: a usage error, not a bug
        raise ValueError(f'{args.config}: {err}') from err
    example, outputs = export(model, shape, args.output, args.opset, False, args.legacy, wrapper=wrapper)
    print(f'wrote {args.output} ({osp.getsize(args.output) / 1e6:.2f} MB), input 1x{"x".join(map(str, shape))}, '
          f'outputs boxes/scores/labels/num_dets (max {wrapper.max_det})')
    import onnxruntime as ort
    session = ort.InferenceSession(args.output, providers=['CPUExecutionProvider'])
    ours = unpad(*session.run(None, {session.get_inputs()[0].name: example.numpy()}))
    with torch.no_grad():
        reference = model.predict(example, None)[0]
    reference = {k: v[:wrapper.max_det] for k, v in reference.items()}
    matched, tied = match_detections(ours, reference, args.rtol)
    n = len(reference['scores'])
    print(f'onnxruntime {len(ours["scores"])} detections, predict path {n}; equal (label, score, box to '
          f'{args.rtol}): {matched}; another box of an equal score (a tie): {tied}')
    if (len(ours['scores']) != n or matched + tied < n) and not args.checkpoint:
        print('note: random weights (no checkpoint) score most boxes alike to 1e-7, so onnxruntime\'s last-bit '
              'differences reorder them through NMS; check a trained checkpoint', file=sys.stderr)
    elif len(ours['scores']) != n or matched + tied < n:
        print(f'FAILED: {n - matched - tied} of {n} predict-path detections have no equal in the graph\'s output',
              file=sys.stderr)
        raise SystemExit(1)
    return [float(matched)]


def main(argv=None) -> List[float]:
    args = parse_args(argv)
    cfg = load_config(require_file(args.config, 'config file'))
    output_file(args.output)
    shape = input_shape(cfg, args.shape, args.config)
    if args.checkpoint:
        require_checkpoint(args.checkpoint, 'checkpoint')
    require_export_packages(args.legacy)
    model = build_model(cfg, args.checkpoint)
    if args.fuse:
        tasks.fuse(model)
    if args.with_nms:
        return export_with_nms(model, shape, args)
    example, reference = export(model, shape, args.output, args.opset, args.dynamic, args.legacy)
    print(f'wrote {args.output} ({osp.getsize(args.output) / 1e6:.2f} MB), input 1x{"x".join(map(str, shape))}')
    try:
        return check_with_onnxruntime(args.output, example, reference, args.rtol)
    except AssertionError as err:
        print(f'FAILED: {err}', file=sys.stderr)
        raise SystemExit(1)


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
