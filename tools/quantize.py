#!/usr/bin/env python
"""int8 post-training static quantization of a config's network with onnxruntime (QDQ format).

The network (tensor mode) is exported to ONNX, prepared (``quant_pre_process``: shape inference and graph
optimisation), calibrated on ``--num-images`` inputs and written with QuantizeLinear/DequantizeLinear pairs:
weights int8, symmetric, one scale per output channel; activations uint8, one scale and zero point per tensor
(Krishnamoorthi, 2018, "Quantizing deep convolutional networks for efficient inference", sections 2 and 3.1:
per-channel weights keep post-training accuracy within ~2% on ImageNet networks). Calibration ranges from
``--method`` minmax (largest range seen), percentile (``--percentile`` of the magnitudes) or entropy (KL
divergence of the histograms, TensorRT's method).

Where an int8 convolution reads a tensor made by a float operator or feeds only float operators (ESPCN's tanh:
onnxruntime has no int8 tanh), those activations get one range per channel instead, chosen by the squared error
after the consuming operator, at no run-time cost: ``tasks/quant_channels.py`` (``--per-tensor-boundaries`` turns
it off).

Calibration inputs: ``--calib train|val|test`` takes samples of the config's dataloader (its pipeline, then the
data preprocessor: exactly the network's input), ``--calib FOLDER`` the images of a folder through the inference
pipeline (for super-resolution they are the low-resolution inputs).

Excluded from quantization by default (``--exclude`` adds names, ``--no-default-exclude`` keeps them in):
the convolutions that read the graph input (the first layer: its input is the image, its few channels get a
coarse per-tensor uint8 scale for little speed) and those whose output reaches a graph output without another
convolution on the way (the heads' last layers: class logits, box deltas, depth, the sub-pixel output of ESPCN,
where int8 steps are errors of the result itself). The names excluded are printed.

Evaluate the result with ``tools/test.py CONFIG --onnx model_int8.onnx``; time it with
``tools/benchmark.py CONFIG --backend onnxruntime --onnx model_int8.onnx``.
"""
from __future__ import annotations

import argparse
import logging
import os
import os.path as osp
import sys
import tempfile
from typing import Iterator, List, Optional, Sequence

import numpy as np
import torch

import data  # noqa: F401
import tasks  # noqa: F401
from tasks import Inferencer, load_config
from tasks.cli import input_shape, output_file, positive_int, require_checkpoint, require_file

METHODS = ('minmax', 'percentile', 'entropy')
SPLITS = ('train', 'val', 'test')
_LINEAR_OPS = ('Conv', 'ConvTranspose', 'Gemm', 'MatMul')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (random weights when omitted)')
    parser.add_argument('--calib', required=True, help="calibration data: 'train', 'val' or 'test' (the config's "
                        'dataloader samples) or a folder of input images')
    parser.add_argument('--num-images', type=int, default=32, help='calibration inputs (default 32)')
    parser.add_argument('--output', required=True, help='the int8 .onnx file to write')
    parser.add_argument('--method', choices=METHODS, default='percentile',
                        help='calibration method (default percentile)')
    parser.add_argument('--percentile', type=float, default=99.9, help='--method percentile: the percentile of |x| '
                        'that becomes the range (default 99.9)')
    parser.add_argument('--exclude', nargs='+', default=[], help='more ONNX node names to keep in float')
    parser.add_argument('--no-default-exclude', action='store_true',
                        help='quantize the first and last layers too')
    parser.add_argument('--per-tensor-boundaries', action='store_true',
                        help='one range per tensor also where an int8 convolution meets a float operator (default: '
                        'one per channel there, see tasks/quant_channels.py)')
    parser.add_argument('--shape', type=int, nargs='+', help="export input shape without batch (default: the "
                        "config's benchmark_shape)")
    parser.add_argument('--static', action='store_true', help='fixed input size (default: dynamic height/width)')
    parser.add_argument('--fp32-output', help='also keep the float ONNX export here')
    parser.add_argument('--seed', type=int, default=0, help='which dataset samples calibrate (random order)')
    parser.add_argument('--threads', type=positive_int, help='torch and calibration threads')
    args = parser.parse_args(argv)
    if args.num_images < 1:
        parser.error(f'--num-images must be >= 1, got {args.num_images}')
    return args


# --- calibration data -----------------------------------------------------------------------------------------
def dataset_inputs(cfg, model, split: str, num: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Network inputs of ``num`` samples (random order from ``seed``) of the config's ``<split>_dataloader``."""
    from data import DATASETS
    key = f'{split}_dataloader'
    if key not in cfg:
        raise ValueError(f'the config has no {key} to calibrate on; give --calib FOLDER')
    dataset = DATASETS.build(cfg[key]['dataset'])
    if len(dataset) == 0:
        raise ValueError(f'the {split} dataset of the config is empty')
    order = np.random.default_rng(seed).permutation(len(dataset))[:num]
    for index in order:
        batch = model.data_preprocessor([dataset[int(index)]], False)
        yield batch['inputs'].float().cpu().numpy()


def folder_inputs(inferencer: Inferencer, folder: str, num: int) -> Iterator[np.ndarray]:
    """Network inputs of the first ``num`` images (sorted by name) of ``folder``, through the inference path."""
    suffixes = tuple(inferencer.model.input_suffixes)
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(suffixes))
    if not files:
        raise ValueError(f'--calib folder {folder} has no images ({", ".join(suffixes)})')
    for name in files[:num]:
        sample = inferencer.sample(osp.join(folder, name))
        batch = inferencer.model.data_preprocessor([sample], False)
        yield batch['inputs'].float().cpu().numpy()


def center_crop_common(arrays: Sequence[np.ndarray]) -> List[np.ndarray]:
    """The arrays cut to their smallest common spatial size, around their centres."""
    size = np.min([a.shape[2:] for a in arrays], axis=0)
    out = []
    for a in arrays:
        starts = [(n - s) // 2 for n, s in zip(a.shape[2:], size)]
        out.append(np.ascontiguousarray(a[(Ellipsis,) + tuple(slice(b, b + s) for b, s in zip(starts, size))]))
    return out


class ArrayReader:
    """An onnxruntime ``CalibrationDataReader`` over precomputed input arrays."""

    def __init__(self, input_name: str, arrays: Sequence[np.ndarray]) -> None:
        self.input_name, self.arrays = input_name, list(arrays)
        self._iter = iter(self.arrays)

    def get_next(self) -> Optional[dict]:
        array = next(self._iter, None)
        return None if array is None else {self.input_name: array}

    def rewind(self) -> None:
        self._iter = iter(self.arrays)


# --- which layers stay in float ---------------------------------------------------------------------------------
def first_layers(model_path: str) -> List[str]:
    """Names of the linear nodes that read a graph input."""
    import onnx
    graph = onnx.load(model_path).graph
    inputs = {i.name for i in graph.input}
    return [n.name for n in graph.node if n.op_type in _LINEAR_OPS and n.input and n.input[0] in inputs]


def default_exclusions(model_path: str) -> List[str]:
    """Names of the linear nodes that read a graph input and of those that reach a graph output without another
    linear node on the way (see the module docstring)."""
    import onnx
    graph = onnx.load(model_path).graph
    producer = {out: node for node in graph.node for out in node.output}
    first = first_layers(model_path)
    last, seen = [], set()
    stack = [o.name for o in graph.output]
    while stack:
        tensor = stack.pop()
        node = producer.get(tensor)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in _LINEAR_OPS:
            last.append(node.name)
            continue
        stack.extend(node.input)
    return sorted(set(first) | set(last))


def quantized_op_types() -> List[str]:
    """The op types onnxruntime's ``quantize_static`` quantizes by default in QDQ format."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
    return sorted(set(QLinearOpsRegistry) | set(QDQRegistry))


class _RankOneAxisFilter(logging.Filter):
    """Drops onnxruntime's "Axis 1 is out-of-range for weight ... with rank 1": per-channel quantization asked
    for a 1-D constant (a GroupNorm's scale or shift feeding Mul/Add), which onnxruntime then quantizes per tensor,
    as it should; one line per use of such a constant (41 for the 3D U-Net) says nothing to the user."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ('is out-of-range for weight' in message and 'with rank 1' in message)


class _quiet_rank_one_axis_warnings:
    def __enter__(self):
        self.filter = _RankOneAxisFilter()
        logging.getLogger().addFilter(self.filter)

    def __exit__(self, *exc):
        logging.getLogger().removeFilter(self.filter)


def quantize(fp32_path: str, output: str, reader: ArrayReader, method: str = 'minmax',
             exclude: Sequence[str] = (), percentile: float = 99.999,
             channel_inputs: Optional[Sequence[np.ndarray]] = None) -> List[str]:
    """QDQ static quantization of ``fp32_path`` into ``output``; returns the node names kept in float.

    ``channel_inputs`` (network inputs, any sizes): per-channel ranges, chosen on them, for the int8 convolutions'
    tensors whose other side is float (``tasks.quant_channels``); ``None``: per-tensor ranges everywhere."""
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)
    from tasks import quant_channels
    prepared = os.path.abspath(output + '.prep.onnx')
    fp32_path = os.path.abspath(fp32_path)
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix='mobilevision_prep_') as scratch:
        os.chdir(scratch)  # a failed symbolic shape inference leaves its temporary model files in the current folder
        try:
            try:
                quant_pre_process(fp32_path, prepared, skip_symbolic_shape=False)
            except Exception:  # symbolic shape inference cannot follow some graphs; ONNX shape inference is enough
                quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
        finally:
            os.chdir(here)
    plan, overrides = None, {}
    if channel_inputs is not None:
        model = onnx.load(prepared)
        plan = quant_channels.find_boundaries(model, quantized_op_types(), exclude)
        if plan.tensors():
            samples = quant_channels.collect_channel_samples(
                model, plan.tensors(), ({reader.input_name: a} for a in channel_inputs))
            quant_channels.choose_ranges(plan, samples)
            model, overrides = quant_channels.rescale(model, plan)
            onnx.save(model, prepared)
            exclude = list(exclude) + plan.helper_nodes
        else:
            plan = None
    calibrate = {'minmax': CalibrationMethod.MinMax, 'percentile': CalibrationMethod.Percentile,
                 'entropy': CalibrationMethod.Entropy}[method]
    def run(method):
        reader.rewind()
        with _quiet_rank_one_axis_warnings():
            quantize_static(prepared, output, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            calibrate_method=method, nodes_to_exclude=list(exclude),
                            extra_options={'WeightSymmetric': True, 'ActivationSymmetric': False,
                                           'CalibPercentile': percentile, 'TensorQuantOverrides': overrides})
    try:
        try:
            run(calibrate)
        except ValueError as err:  # numpy cannot histogram a tensor that is constant over the calibration set
            if 'bins' not in str(err) or calibrate == CalibrationMethod.MinMax:
                raise
            print(f'note: {method} calibration failed on a constant tensor ({err}); calibrating with minmax')
            run(CalibrationMethod.MinMax)
        if plan is not None:
            onnx.save(quant_channels.fold(onnx.load(output), plan), output)
    finally:
        if osp.exists(prepared):
            os.remove(prepared)
    return [n for n in exclude if plan is None or n not in plan.helper_nodes]


def main(argv=None) -> str:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(require_file(args.config, 'config file'))
    output_file(args.output)
    if args.fp32_output:
        output_file(args.fp32_output, '--fp32-output')
    if args.checkpoint:
        require_checkpoint(args.checkpoint, 'checkpoint')
    if args.calib not in SPLITS and not osp.isdir(args.calib):
        raise FileNotFoundError(f"--calib {args.calib} is neither a folder nor one of {', '.join(SPLITS)}")
    shape = input_shape(cfg, args.shape, args.config)
    inferencer = Inferencer(cfg, args.checkpoint)
    model = inferencer.model
    inputs = (list(dataset_inputs(cfg, model, args.calib, args.num_images, args.seed)) if args.calib in SPLITS
              else list(folder_inputs(inferencer, args.calib, args.num_images)))
    full_inputs = inputs  # the per-channel boundary ranges take every size
    sizes = {a.shape[2:] for a in inputs}
    if args.method != 'minmax' and len(sizes) > 1:  # onnxruntime's histogram calibrators stack the batches
        inputs = center_crop_common(inputs)
        sizes = {a.shape[2:] for a in inputs}
    if args.static and sizes != {tuple(shape[1:])}:
        raise ValueError(f'--static exports 1x{"x".join(map(str, shape))} but the calibration inputs have sizes '
                         f'{sorted(sizes)}; drop --static or resize them in the config pipeline')
    tools_dir = osp.dirname(osp.abspath(__file__))
    if tools_dir not in sys.path:
        sys.path.insert(0, tools_dir)
    from export import export  # tools/export.py
    os.makedirs(osp.dirname(osp.abspath(args.output)) or '.', exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='mobilevision_quantize_') as tmp:
        fp32 = args.fp32_output or osp.join(tmp, 'model_fp32.onnx')
        export(model, shape, fp32, opset=17, dynamic=not args.static, legacy=True)  # names nodes by module path
        exclude = ([] if args.no_default_exclude else default_exclusions(fp32)) + list(args.exclude)
        import onnxruntime as ort
        name = ort.InferenceSession(fp32, providers=['CPUExecutionProvider']).get_inputs()[0].name
        quantize(fp32, args.output, ArrayReader(name, inputs), args.method, exclude, args.percentile,
                 channel_inputs=None if args.per_tensor_boundaries else full_inputs)
    print(f'calibrated on {len(inputs)} inputs ({args.calib}, {args.method}); kept in float: '
          f'{", ".join(exclude) if exclude else "nothing"}')
    print(f'wrote {args.output} ({osp.getsize(args.output) / 1e6:.2f} MB)')
    return args.output


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(main)
