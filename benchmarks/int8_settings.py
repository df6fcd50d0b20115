#!/usr/bin/env python
"""onnxruntime int8 settings on the classification and detection backbones (issue 10: int8 <= 0.5x onnxruntime fp32).

For MobileNetV2-224 (the classifier network) and SSDLite320's MobileNetV3-Large feature extractor alone (random
weights; speed does not depend on them): export fp32, quantize each variant below on the bundled photos, time
``session.run`` at batch 1 with all sessions in turns (``--rounds`` rounds, the order alternating), and report per
variant the median over rounds of its time over fp32's time in the same round. Then onnxruntime's profiler
(``SessionOptions.enable_profiling``) splits fp32 and the recipe's int8 into kinds of node (first convolution,
depthwise, pointwise, other convolutions, Q/DQ, float activations, int8 element-wise ops, layout changes).

Variants (all QDQ, symmetric per-channel int8 weights, uint8 activations, full graph optimisation unless named):
``recipe`` tools/quantize.py's (classifier: first conv and Gemm in float; backbone: first conv in float; without
its per-channel ranges at float borders, which change no kernel: same time in ``deploy.py``),
``all_int8`` every layer int8, ``first_float`` only the first conv in float, ``qoperator`` QOperator format,
``per_tensor_weights``, ``conv_only`` (Add, Mul, GlobalAveragePool left in float), ``int8_activations`` (signed
symmetric), ``float_depthwise`` (depthwise convs and their activations in float), ``recipe@extended`` /
``recipe@basic`` (session graph optimisation level). Calibration is min-max here (ranges do not change speed).

    python benchmarks/int8_settings.py [--rounds 40] [--threads 1] [--models mobilenetv2 ssdlite_backbone]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy  # noqa: E402  (puts the repository and tools/ on sys.path)
from tasks.cli import positive_int, run_cli  # noqa: E402

MODELS = ('mobilenetv2', 'ssdlite_backbone')


def export_fp32(name: str, folder: str):
    """The fp32 ONNX file and the calibration inputs (the bundled photos through the config's pipeline)."""
    from export import export
    from tasks import Inferencer, load_config
    key = 'ssdlite' if name == 'ssdlite_backbone' else name
    spec = deploy.MODELS[key]
    cfg = load_config(deploy.REPO / 'configs' / spec['config'])
    inf = Inferencer(cfg, None)
    calib = [deploy.network_input(inf, deploy.photo(p, spec['size'])).numpy() for p in deploy.PHOTOS]
    path = os.path.join(folder, f'{name}_fp32.onnx')
    wrapper = deploy._Features(inf.model) if name == 'ssdlite_backbone' else None
    export(inf.model, calib[0].shape[1:], path, opset=17, legacy=True, wrapper=wrapper)
    return path, calib


def _depthwise(model) -> Dict[str, str]:
    """Output tensor -> name of every depthwise Conv and of the activation nodes reading it."""
    return _with_activations(model, {n.output[0]: n.name for n in model.graph.node if n.op_type == 'Conv'
                                     and any(a.name == 'group' and a.i > 1 for a in n.attribute)})


def _with_activations(model, out: Dict[str, str]) -> Dict[str, str]:
    """``out`` (conv output -> conv name) plus the activations reading those outputs (fused into them in fp32)."""
    for n in model.graph.node:
        if n.op_type in ('HardSigmoid', 'HardSwish', 'Mul', 'Relu', 'Clip') and any(i in out for i in n.input):
            out[n.output[0]] = n.name
    return out


def quantize_variant(fp32: str, out: str, calib: List[np.ndarray], variant: str, classifier: bool) -> str:
    import onnx
    import quantize as qtool
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)
    prepared = out + '.prep.onnx'
    quant_pre_process(fp32, prepared)
    first = qtool.first_layers(fp32)
    exclude = {'recipe': qtool.default_exclusions(fp32) if classifier else first, 'all_int8': []}.get(variant, first)
    if variant == 'float_depthwise':
        exclude = exclude + list(_depthwise(onnx.load(prepared)).values())
    quantize_static(prepared, out, qtool.ArrayReader('input', calib),
                    quant_format=QuantFormat.QOperator if variant == 'qoperator' else QuantFormat.QDQ,
                    per_channel=variant != 'per_tensor_weights', weight_type=QuantType.QInt8,
                    activation_type=QuantType.QInt8 if variant == 'int8_activations' else QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude,
                    op_types_to_quantize=['Conv', 'Gemm'] if variant == 'conv_only' else None,
                    extra_options={'WeightSymmetric': True, 'ActivationSymmetric': variant == 'int8_activations'})
    os.remove(prepared)
    return out


def session(path: str, threads: int, level: str = 'all', profile: str = ''):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = {'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                        'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                        'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}[level]
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    if profile:
        options.enable_profiling, options.profile_file_prefix = True, profile
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def time_ratios(sessions: Dict[str, object], x: np.ndarray, rounds: int) -> Dict[str, dict]:
    names = list(sessions)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for s in sessions.values():
        for _ in range(3):
            s.run(None, {'input': x})
    for i in range(rounds):
        for n in (names if i % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            sessions[n].run(None, {'input': x})
            times[n].append((time.perf_counter() - start) * 1e3)
    base = np.array(times['fp32'])
    return {n: dict(median_ms=round(float(np.median(t)), 3),
                    ratio_to_fp32=round(float(np.median(np.array(t) / base)), 3)) for n, t in times.items()}


def node_kind(op: str, name: str, fp32_model, depthwise: Dict[str, str], first: Dict[str, str]) -> str:
    base = re.sub(r'(_token_\d+|_nchwc)$', '', name)
    if op in ('Conv', 'QLinearConv'):
        if base in first or base in first.values():
            return 'first conv'
        if base in depthwise or base in depthwise.values():
            return 'depthwise conv'
        return 'pointwise and other convs'
    if op in ('QuantizeLinear', 'DequantizeLinear'):
        return 'Q/DQ'
    if op in ('Transpose', 'ReorderInput', 'ReorderOutput'):
        return 'layout changes'
    if op.startswith('QLinear') or op == 'QGemm':
        return 'int8 ' + op[len('QLinear'):] if op.startswith('QLinear') else 'int8 Gemm'
    return 'float ' + op


def profile(path: str, fp32: str, x: np.ndarray, threads: int, runs: int = 20) -> Dict[str, float]:
    """Median kernel time (ms) per kind of node over ``runs`` runs."""
    import onnx
    model = onnx.load(fp32)
    depthwise = _depthwise(model)
    first = _with_activations(model, {n.output[0]: n.name for n in model.graph.node
                                      if n.op_type == 'Conv' and n.input[0] == 'input'})
    with tempfile.TemporaryDirectory() as tmp:
        s = session(path, threads, profile=os.path.join(tmp, 'p'))
        for _ in range(runs):
            s.run(None, {'input': x})
        events = json.load(open(s.end_profiling()))
    per_node: Dict[tuple, List[float]] = collections.defaultdict(list)
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'):
            per_node[(e['args'].get('op_name'), e['name'][:-len('_kernel_time')])].append(e['dur'] / 1e3)
    kinds: Dict[str, float] = collections.Counter()
    for (op, name), durations in per_node.items():
        kinds[node_kind(op, name, model, depthwise, first)] += float(np.median(durations))
    return {k: round(v, 3) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', choices=MODELS, default=list(MODELS),
                        help='which networks (default: both)')
    parser.add_argument('--rounds', type=positive_int, default=40, help='timed rounds (default 40)')
    parser.add_argument('--threads', type=positive_int, default=1, help='onnxruntime intra-op threads (default 1)')
    parser.add_argument('--json', help='also write the report here')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    variants = ['recipe', 'all_int8', 'first_float', 'qoperator', 'per_tensor_weights', 'conv_only',
                'int8_activations', 'float_depthwise']
    report = {}
    with tempfile.TemporaryDirectory(prefix='mobilevision_int8_settings_') as tmp:
        for name in args.models:
            fp32, calib = export_fp32(name, tmp)
            classifier = name == 'mobilenetv2'
            paths = {v: quantize_variant(fp32, os.path.join(tmp, f'{name}_{v}.onnx'), calib, v, classifier)
                     for v in variants}
            sessions = {'fp32': session(fp32, args.threads)}
            sessions.update({v: session(p, args.threads) for v, p in paths.items()})
            sessions['recipe@extended'] = session(paths['recipe'], args.threads, 'extended')
            sessions['recipe@basic'] = session(paths['recipe'], args.threads, 'basic')
            sessions['fp32@extended'] = session(fp32, args.threads, 'extended')
            x = calib[0]
            timing = time_ratios(sessions, x, args.rounds)
            kinds = {'fp32': profile(fp32, fp32, x, args.threads), 'recipe': profile(paths['recipe'], fp32, x,
                                                                                      args.threads)}
            report[name] = dict(threads=args.threads, timing=timing, profile_ms=kinds)
            print(f'{name} (batch 1, {args.threads} thread(s), {args.rounds} rounds)')
            for v, r in timing.items():
                print(f'  {v:22s} {r["median_ms"]:8.2f} ms   int8/fp32 {r["ratio_to_fp32"]:.3f}')
            for v, k in kinds.items():
                parts = '; '.join(f'{a} {b:.2f}' for a, b in k.items())
                print(f'  profile {v}: total {sum(k.values()):.2f} ms; {parts}')
            sys.stdout.flush()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == '__main__':
    run_cli(main)
