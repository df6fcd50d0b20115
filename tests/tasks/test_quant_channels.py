"""tasks.quant_channels: per-channel ranges at the float/int8 borders of a QDQ graph, on a tiny conv-tanh network."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tasks import quant_channels as qc

CONVS = ('conv0', 'conv1', 'conv2')


def tiny_model(seed: int = 0, dims: int = 2) -> onnx.ModelProto:
    """conv0 (1->4) -> tanh -> conv1 (4->6) -> tanh -> conv2 (6->2), 3x3 'same' convolutions (3x3x3 with
    ``dims=3``); conv1's output channels get very different scales (what per-tensor ranges handle badly)."""
    rng = np.random.default_rng(seed)
    widths = [(4, 1), (6, 4), (2, 6)]
    inits, nodes, prev = [], [], 'input'
    for i, (out_c, in_c) in enumerate(widths):
        w = rng.normal(0, 0.6, (out_c, in_c) + (3,) * dims).astype(np.float32)
        b = rng.normal(0, 0.1, out_c).astype(np.float32)
        if i == 1:
            w *= np.array([0.05, 0.2, 0.5, 1, 2, 4], np.float32).reshape(-1, *([1] * (dims + 1)))
        inits += [numpy_helper.from_array(w, f'w{i}'), numpy_helper.from_array(b, f'b{i}')]
        nodes.append(helper.make_node('Conv', [prev, f'w{i}', f'b{i}'], [f'z{i}'], name=CONVS[i],
                                      pads=[1] * (2 * dims)))
        prev = f'z{i}'
        if i < 2:
            nodes.append(helper.make_node('Tanh', [prev], [f't{i}'], name=f'tanh{i}'))
            prev = f't{i}'
    graph = helper.make_graph(nodes, 'tiny', [helper.make_tensor_value_info('input', TensorProto.FLOAT,
                                                                            [1, 1] + [None] * dims)],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 2] + [None] * dims)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run(model: onnx.ModelProto, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=['CPUExecutionProvider'])
    return session.run(None, {'input': x})[0]


def images(n: int, seed: int = 1, dims: int = 2):
    rng = np.random.default_rng(seed)
    return [rng.random((1, 1) + (5,) * (dims - 2) + (12 + i, 10 + 2 * i), dtype=np.float32) for i in range(n)]


def quantize(model: onnx.ModelProto, tmp_path, per_channel: bool):
    """onnxruntime QDQ of ``model`` with conv0/conv2 in float, through tools/quantize.py's ``quantize``."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'tools'))
    import quantize as qtool
    src, dst = tmp_path / 'fp32.onnx', tmp_path / f'int8_{per_channel}.onnx'
    onnx.save(model, str(src))
    calib = images(6)
    qtool.quantize(str(src), str(dst), qtool.ArrayReader('input', qtool.center_crop_common(calib)), 'minmax',
                   ['conv0', 'conv2'], channel_inputs=calib if per_channel else None)
    return onnx.load(str(dst))


def test_boundaries_are_the_int8_conv_tensors_next_to_tanh():
    plan = qc.find_boundaries(tiny_model(), ['Conv'], exclude=['conv0', 'conv2'])
    assert plan.inputs == {'t0': ['conv1']}
    assert plan.outputs == {'z1': ('conv1', 'Tanh')}
    # conv2 int8 too: conv1's output feeds tanh (float) only, conv2's input is produced by tanh (float)
    plan = qc.find_boundaries(tiny_model(), ['Conv'], exclude=['conv0'])
    assert plan.inputs == {'t0': ['conv1'], 't1': ['conv2']} and set(plan.outputs) == {'z1'}
    # a quantized consumer: nothing to do at that border
    assert not qc.find_boundaries(tiny_model(), ['Conv', 'Tanh'], exclude=['conv0', 'conv2']).outputs


@pytest.mark.parametrize('dims', [2, 3])
def test_rescaled_float_model_computes_the_same_function(dims):
    model = tiny_model(dims=dims)
    plan = qc.find_boundaries(model, ['Conv'], exclude=['conv0', 'conv2'])
    qc.choose_ranges(plan, qc.collect_channel_samples(
        model, plan.tensors(), ({'input': x} for x in images(4, dims=dims))))
    rescaled, overrides = qc.rescale(model, plan)
    assert set(overrides) == {'t0_channel_scaled', 'z1_channel_shared'}
    assert len(plan.helper_nodes) == 3  # Mul before conv1; Mul and Add after it
    x = images(1, seed=5, dims=dims)[0]
    np.testing.assert_allclose(run(rescaled, x), run(model, x), rtol=1e-5, atol=1e-5)


def test_folded_per_channel_quantizers_replace_the_helper_nodes_and_beat_per_tensor(tmp_path):
    model = tiny_model()
    int8_channel = quantize(model, tmp_path, per_channel=True)
    q = {n.op_type for n in int8_channel.graph.node}
    assert 'Mul' not in q and 'Add' not in q  # helper nodes folded away
    constants = {i.name for i in int8_channel.graph.initializer}
    per_axis = sorted((n.op_type, n.input[0] if n.op_type == 'QuantizeLinear' else n.output[0])
                      for n in int8_channel.graph.node if n.op_type in ('QuantizeLinear', 'DequantizeLinear')
                      and n.input[0] not in constants and any(a.name == 'axis' for a in n.attribute))
    assert per_axis == [('DequantizeLinear', 'z1'), ('QuantizeLinear', 't0')]  # one scale per channel there
    # per-channel ranges beat per-tensor ones; onnxruntime's graph optimisations keep the folded graph's result
    x = images(1, seed=7)[0]
    fp32 = run(model, x)
    err_channel = np.abs(run(int8_channel, x) - fp32).mean()
    err_tensor = np.abs(run(quantize(model, tmp_path, per_channel=False), x) - fp32).mean()
    assert err_channel < 0.6 * err_tensor
    np.testing.assert_allclose(run(int8_channel, x, optimize=False), run(int8_channel, x), atol=1e-5)


def test_fold_is_exact_against_the_helper_graph(tmp_path, monkeypatch):
    """Per-channel Q/DQ (folded) equal rescale -> per-tensor Q/DQ -> inverse rescale (the graph ``fold`` is given:
    the rescaled convolutions, onnxruntime's per-tensor Q/DQ and the float Mul/Add helpers), element by element."""
    given = []
    fold = qc.fold

    def keep_a_copy(model, plan):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        given.append(copy)
        return fold(model, plan)
    monkeypatch.setattr(qc, 'fold', keep_a_copy)
    folded = quantize(tiny_model(), tmp_path, per_channel=True)
    (helpers,) = given
    assert [n.op_type for n in helpers.graph.node if n.op_type in ('Mul', 'Add')] == ['Mul', 'Mul', 'Add']
    for x in images(3, seed=11):
        expected = run(helpers, x, optimize=False)
        assert np.abs(expected).max() > 0.1
        np.testing.assert_allclose(run(folded, x, optimize=False), expected, rtol=1e-5, atol=1e-5)


def test_range_rules_on_hand_made_values():
    # one outlier at 5 among 200,001 values in [-1, 1]: clipping it (error 16 / 200,002 = 8e-5) costs less than
    # a 5x coarser step ((5 / 127)^2 / 12 = 1.3e-4)
    values = np.concatenate([np.linspace(-1, 1, 200001), [5.0]])
    assert qc.symmetric_range(values, 5.0) == pytest.approx(1.0, abs=0.01)
    assert qc.symmetric_range(np.append(np.linspace(-1, 1, 2001), 5.0), 5.0) == 5.0  # 1 in 2,002: keep it
    assert qc.symmetric_range(np.linspace(-1, 1, 101), 1.0) == 1.0  # nothing to clip: min-max
    step, zero = qc.affine_grid(0.5, 2.0)  # a range not containing 0 is widened to it
    assert (step, zero) == (pytest.approx(2.0 / 255), 0)
    wide = np.random.default_rng(0).normal(0, 3, 50000)
    plain = qc.affine_range(wide, wide.min(), wide.max())
    after_tanh = qc.affine_range(wide, wide.min(), wide.max(), np.tanh)
    assert after_tanh[0] < plain[0]  # tanh saturates: finer steps near 0 pay more than the clipped tails
