"""Per-channel activation ranges where an int8 convolution meets float operators in a QDQ graph.

onnxruntime's QLinearConv takes one scale and zero point for its input and one for its output (per-tensor
activations, Krishnamoorthi 2018, section 3.1), so the channel with the widest range sets the step of every channel.
Where the tensor is produced or consumed by an operator that stays in float (ESPCN's tanh: onnxruntime has no int8
tanh), the quantizer itself runs in float and can be per-channel for free; the int8 convolution keeps one scale
because the channels are rescaled to a common range and the inverse scale goes into the convolution's weights (the
rescaling of Nagel et al., 2019, "Data-Free Quantization", section 4.1, between a tensor's channels and the weights
next to it, exact because a convolution is linear in each channel):

* input side (float producer -> Q -> DQ -> Conv): ``Q`` gets one scale per channel (``axis=1``) of range ``r_c``;
  ``DQ`` keeps one scale; the convolution's input channel ``c`` is multiplied by ``r_c`` (so zero stays zero and
  the zero padding is unchanged);
* output side (Conv -> Q -> DQ -> float consumers): the convolution's output channel ``o`` is scaled and shifted onto
  one common grid (weights and bias), ``Q`` keeps one scale, ``DQ`` gets one scale and zero point per channel
  (``axis=1``) and gives back the original values.

The ranges are chosen per channel on the calibration data by the mean squared error of the quantized tensor, measured
after the float operator that consumes it (tanh, sigmoid, ... : a step in tanh's saturated tails costs nothing)
among the min-max range and a few percentiles (Nagel et al., 2021, "A White Paper on Neural Network Quantization",
section 3.4: MSE-based range setting).

Use: ``plan = find_boundaries(model, quantized_types, exclude)``, ``samples = collect_channel_samples(...)``,
``rescaled, overrides = rescale(model, plan, samples)``, onnxruntime ``quantize_static`` on ``rescaled`` with
``TensorQuantOverrides=overrides`` and ``plan.helper_nodes`` excluded, then ``fold(quantized, plan)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

#: float functions of the single-input operators that may consume a convolution's output (the error is measured
#: after them); any other consumer counts as the identity
ACTIVATIONS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    'Tanh': np.tanh,
    'Sigmoid': lambda x: 1 / (1 + np.exp(-x)),
    'Relu': lambda x: np.maximum(x, 0),
    'HardSigmoid': lambda x: np.clip(x / 6 + 0.5, 0, 1),  # torch's (alpha 1/6, beta 0.5), as exported
    'HardSwish': lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
}
PERCENTILES = (99.999, 99.99, 99.9, 99.5, 99.0)  # besides the min-max range
_SHARED_SCALE = 1.0 / 128  # the one step of a rescaled tensor (uint8, zero point 128: range [-1, 127/128])


@dataclass
class Boundaries:
    """Tensors at the float/int8 borders: ``inputs`` tensor -> the Convs reading it; ``outputs`` tensor -> (its
    Conv, the consumer's op type or ''). ``helper_nodes`` names the float nodes ``rescale`` adds."""
    inputs: Dict[str, List[str]] = field(default_factory=dict)
    outputs: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    helper_nodes: List[str] = field(default_factory=list)
    ranges: Dict[str, dict] = field(default_factory=dict)

    def tensors(self) -> List[str]:
        return list(self.inputs) + list(self.outputs)


def _initializers(graph) -> Dict[str, object]:
    return {i.name: i for i in graph.initializer}


def _group(node) -> int:
    return next((a.i for a in node.attribute if a.name == 'group'), 1)


def find_boundaries(model, quantized_types: Iterable[str], exclude: Sequence[str] = ()) -> Boundaries:
    """The int8 convolutions' input and output tensors whose other side is float. A Conv is int8 when its op type
    is quantized and it is not excluded; it must be an ordinary (group 1) convolution with constant weights."""
    graph = model.graph
    quantized_types, exclude = set(quantized_types), set(exclude)
    inits = _initializers(graph)
    producer = {o: n for n in graph.node for o in n.output}
    consumers: Dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_io = {t.name for t in graph.input} | {t.name for t in graph.output}

    def is_int8(node) -> bool:
        return node.op_type in quantized_types and node.name not in exclude

    def own_constant(name: str) -> bool:  # an initializer only this node reads (it will be rescaled)
        return name in inits and len(consumers.get(name, [])) == 1

    def int8_conv(node) -> bool:
        return (node.op_type == 'Conv' and is_int8(node) and _group(node) == 1 and own_constant(node.input[1])
                and (len(node.input) < 3 or not node.input[2] or own_constant(node.input[2])))

    plan = Boundaries()
    for tensor, users in consumers.items():
        source = producer.get(tensor)
        if source is None or tensor in graph_io or is_int8(source):
            continue
        if all(int8_conv(u) and u.input[0] == tensor for u in users):
            plan.inputs[tensor] = [u.name for u in users]
    for node in graph.node:
        if not int8_conv(node):
            continue
        out = node.output[0]
        users = consumers.get(out, [])
        if out in graph_io or not users or any(is_int8(u) for u in users):
            continue
        kinds = {u.op_type for u in users}
        plan.outputs[out] = (node.name, kinds.pop() if len(kinds) == 1 else '')
    return plan


def collect_channel_samples(model, tensors: Sequence[str], inputs: Iterable[Dict[str, np.ndarray]],
                            per_input: int = 4096, seed: int = 0) -> Dict[str, dict]:
    """Per tensor (N x C x ...): ``samples`` C x M values at up to ``per_input`` random positions of every input,
    and the exact per-channel ``min`` / ``max`` over all positions."""
    import onnx
    import onnxruntime as ort
    augmented = onnx.ModelProto()
    augmented.CopyFrom(model)
    known = {o.name for o in augmented.graph.output}
    for name in tensors:
        if name not in known:
            augmented.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(augmented.SerializeToString(), options, providers=['CPUExecutionProvider'])
    rng = np.random.default_rng(seed)
    out: Dict[str, dict] = {name: dict(samples=[], min=None, max=None) for name in tensors}
    for feed in inputs:
        values = session.run(list(tensors), feed)
        for name, value in zip(tensors, values):
            flat = np.moveaxis(value, 1, 0).reshape(value.shape[1], -1)
            entry = out[name]
            lo, hi = flat.min(1), flat.max(1)
            entry['min'] = lo if entry['min'] is None else np.minimum(entry['min'], lo)
            entry['max'] = hi if entry['max'] is None else np.maximum(entry['max'], hi)
            pick = rng.choice(flat.shape[1], min(per_input, flat.shape[1]), replace=False)
            entry['samples'].append(flat[:, pick])
    for entry in out.values():
        if not entry['samples']:
            raise ValueError('no calibration inputs')
        entry['samples'] = np.concatenate(entry['samples'], 1).astype(np.float64)
    return out


def symmetric_range(values: np.ndarray, max_abs: float) -> float:
    """The r of a [-r, r] grid of 255 levels with the least squared error on ``values`` (candidates: the largest
    magnitude and ``PERCENTILES`` of the magnitudes)."""
    mag = np.abs(values)
    best, best_err = max(float(max_abs), 1e-8), np.inf
    for r in [float(max_abs)] + [float(v) for v in np.percentile(mag, PERCENTILES)]:
        if r <= 0:
            continue
        step = r / 127
        err = np.mean((np.clip(np.round(values / step), -127, 127) * step - values) ** 2)
        if err < best_err:
            best, best_err = r, err
    return best


def affine_grid(lo: float, hi: float) -> Tuple[float, int]:
    """uint8 step and integer zero point of a range, widened to contain 0 (as onnxruntime does)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    step = max(hi - lo, 1e-8) / 255
    return step, int(np.clip(np.round(-lo / step), 0, 255))


def affine_range(values: np.ndarray, lo: float, hi: float,
                 post: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> Tuple[float, int]:
    """(step, zero point) of the uint8 grid whose error on ``values``, measured after ``post``, is least; candidates:
    [min, max] and the (100 - p, p) percentile ranges."""
    post = post or (lambda x: x)
    reference = post(values)
    candidates = [(lo, hi)] + [(float(np.percentile(values, 100 - p)), float(np.percentile(values, p)))
                               for p in PERCENTILES]
    best, best_err = None, np.inf
    for a, b in candidates:
        step, zero = affine_grid(a, b)
        quantized = (np.clip(np.round(values / step) + zero, 0, 255) - zero) * step
        err = np.mean((post(quantized) - reference) ** 2)
        if err < best_err:
            best, best_err = (step, zero), err
    return best


def choose_ranges(plan: Boundaries, samples: Dict[str, dict]) -> None:
    """Fill ``plan.ranges``: per input tensor ``r`` (C,); per output tensor ``step`` (C,) and ``zero`` (C,)."""
    for name in plan.inputs:
        s = samples[name]
        max_abs = np.maximum(np.abs(s['min']), np.abs(s['max']))
        plan.ranges[name] = dict(r=np.array([symmetric_range(v, m) for v, m in zip(s['samples'], max_abs)]))
    for name, (_, consumer) in plan.outputs.items():
        s = samples[name]
        grids = [affine_range(v, a, b, ACTIVATIONS.get(consumer)) for v, a, b in zip(s['samples'], s['min'], s['max'])]
        plan.ranges[name] = dict(step=np.array([g[0] for g in grids]), zero=np.array([g[1] for g in grids]))


def _const(graph, name: str, value: np.ndarray) -> str:
    from onnx import numpy_helper
    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def _replace_initializer(graph, name: str, value: np.ndarray) -> None:
    from onnx import numpy_helper
    inits = _initializers(graph)
    inits[name].CopyFrom(numpy_helper.from_array(value.astype(numpy_helper.to_array(inits[name]).dtype), name))


def rescale(model, plan: Boundaries):
    """A copy of the float ``model`` computing the same function with the boundary channels on common ranges
    (weights rescaled, float ``Mul``/``Add`` helper nodes undoing it outside the convolutions), and onnxruntime's
    ``TensorQuantOverrides`` fixing the one scale of each rescaled tensor."""
    import onnx
    from onnx import helper, numpy_helper
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = _initializers(graph)
    nodes = {n.name: n for n in graph.node}
    overrides: Dict[str, list] = {}
    new_nodes: List[Tuple[str, object]] = []  # (insert after this node's name, node)
    producer = {o: n for n in graph.node for o in n.output}
    for tensor, convs in plan.inputs.items():
        r = plan.ranges[tensor]['r'].astype(np.float32)
        scaled = tensor + '_channel_scaled'
        name = tensor + '_channel_scale'
        rank = len(inits[nodes[convs[0]].input[1]].dims)  # N C + spatial dims, as the conv's weight
        for conv in convs:
            node = nodes[conv]
            weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
            _replace_initializer(graph, node.input[1], weight * r.reshape(1, -1, *([1] * (weight.ndim - 2))))
            node.input[0] = scaled
        shape = (1, -1) + (1,) * (rank - 2)
        mul = helper.make_node('Mul', [tensor, _const(graph, name + '_inv', (1 / r).reshape(shape))], [scaled],
                               name=name)
        new_nodes.append((producer[tensor].name, mul))
        plan.helper_nodes.append(name)
        overrides[scaled] = [dict(scale=np.array(1 / 127, np.float32), zero_point=np.array(128, np.uint8))]
    for tensor, (conv, _) in plan.outputs.items():
        node = nodes[conv]
        step, zero = plan.ranges[tensor]['step'], plan.ranges[tensor]['zero']
        k = _SHARED_SCALE / step  # z' = k (z + (zero - 128) step): channel grid -> the common one
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        _replace_initializer(graph, node.input[1], weight * k.reshape(-1, *([1] * (weight.ndim - 1))))
        if len(node.input) < 3 or not node.input[2]:
            bias_name = _const(graph, conv + '_channel_bias', np.zeros(weight.shape[0], np.float32))
            del node.input[2:]
            node.input.append(bias_name)
        bias = numpy_helper.to_array(_initializers(graph)[node.input[2]]).astype(np.float64)
        _replace_initializer(graph, node.input[2], k * (bias + (zero - 128) * step))
        shared = tensor + '_channel_shared'
        node.output[0] = shared
        shape = (1, -1) + (1,) * (weight.ndim - 2)
        mul = helper.make_node('Mul', [shared, _const(graph, tensor + '_channel_step',
                                                      (1 / k).astype(np.float32).reshape(shape))],
                               [tensor + '_channel_unscaled'], name=tensor + '_channel_unscale')
        add = helper.make_node('Add', [tensor + '_channel_unscaled', _const(
            graph, tensor + '_channel_offset', (-(zero - 128) * step).astype(np.float32).reshape(shape))],
            [tensor], name=tensor + '_channel_unshift')
        new_nodes += [(conv, mul), (mul.name, add)]
        plan.helper_nodes += [mul.name, add.name]
        overrides[shared] = [dict(scale=np.array(_SHARED_SCALE, np.float32), zero_point=np.array(128, np.uint8))]
    for after, node in new_nodes:  # keep the node list topologically sorted
        index = next(i for i, n in enumerate(graph.node) if n.name == after)
        graph.node.insert(index + 1, node)
    return out, overrides


def fold(model, plan: Boundaries):
    """Fold the helper nodes of ``rescale`` into the adjacent QuantizeLinear / DequantizeLinear nodes (one scale and
    zero point per channel, ``axis=1``) of the quantized ``model``, in place; returns it."""
    from onnx import helper
    graph = model.graph
    consumers: Dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in graph.node for o in n.output}
    drop = set()
    for tensor in plan.inputs:
        r = plan.ranges[tensor]['r']
        mul = producer[tensor + '_channel_scaled']
        quant = [n for n in consumers[mul.output[0]] if n.op_type == 'QuantizeLinear']
        if len(quant) != len(consumers[mul.output[0]]):
            raise RuntimeError(f'{tensor}: the rescaled tensor is not only quantized; cannot fold')
        for q in quant:
            q.input[0] = tensor
            q.input[1] = _const(graph, q.name + '_channel_scale', (r / 127).astype(np.float32))
            q.input[2] = _const(graph, q.name + '_channel_zero', np.full(len(r), 128, np.uint8))
            q.attribute.append(helper.make_attribute('axis', 1))
        drop.add(mul.name)
    for tensor in plan.outputs:
        step, zero = plan.ranges[tensor]['step'], plan.ranges[tensor]['zero']
        add = producer[tensor]
        mul = producer[tensor + '_channel_unscaled']
        dq = producer[mul.input[0]]
        if dq.op_type != 'DequantizeLinear':
            raise RuntimeError(f'{tensor}: the convolution output is not quantized; cannot fold')
        dq.input[1] = _const(graph, dq.name + '_channel_scale', step.astype(np.float32))
        dq.input[2] = _const(graph, dq.name + '_channel_zero', zero.astype(np.uint8))
        dq.attribute.append(helper.make_attribute('axis', 1))
        dq.output[0] = tensor
        drop |= {mul.name, add.name}
    keep = [n for n in graph.node if n.name not in drop]
    del graph.node[:]
    graph.node.extend(keep)
    used = {i for n in graph.node for i in n.input}
    unused = [i for i in graph.initializer if i.name not in used]
    for i in unused:
        graph.initializer.remove(i)
    return model
