"""tools/quantize.py: onnxruntime static int8 (QDQ) of the bundled ESPCN x3 keeps Set5 PSNR-Y within 0.1 dB;
tools/test.py --onnx evaluates an ONNX file with the config's evaluator; default exclusions by graph position."""
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools'))

import quantize  # noqa: E402
from tests.segmentation.seg_testutils import load_tool  # noqa: E402

test_tool = load_tool('test')  # a module of its own: ``import test`` could give Python's test package

ESPCN_X3 = REPO / 'configs' / 'espcn_x3_500e_t91.py'
CKPT_X3 = REPO / 'checkpoints' / 'espcn_x3_t91.pth'


@pytest.fixture(scope='module')
def espcn_x3_int8(tmp_path_factory):
    out = tmp_path_factory.mktemp('quantize')
    int8, fp32 = out / 'espcn_x3_int8.onnx', out / 'espcn_x3_fp32.onnx'
    quantize.main([str(ESPCN_X3), str(CKPT_X3), '--calib', str(REPO / 'tests' / 'assets' / 'sr' / 'T91'),
                   '--num-images', '32', '--output', str(int8), '--fp32-output', str(fp32), '--threads', '1'])
    return int8, fp32


def set5_psnr(**kwargs) -> float:
    metrics = test_tool.main([str(ESPCN_X3), '--threads', '1'] + [a for k, v in kwargs.items() for a in (k, v)])
    return next(v for k, v in metrics.items() if k.lower().endswith('psnr') and 'bicubic' not in k.lower())


@pytest.mark.slow
def test_int8_espcn_x3_psnr_within_0_1_db(espcn_x3_int8):
    int8, fp32 = espcn_x3_int8
    graph = onnx.load(str(int8)).graph
    ops = [n.op_type for n in graph.node]
    assert 'QuantizeLinear' in ops and 'DequantizeLinear' in ops
    # the middle conv's weights are int8, per output channel (32 scales), symmetric (zero points 0)
    inits = {i.name: i for i in graph.initializer}
    weight = inits['model.backbone.layers.2.weight_quantized']
    assert weight.data_type == onnx.TensorProto.INT8
    scales = onnx.numpy_helper.to_array(inits['model.backbone.layers.2.weight_scale'])
    assert scales.shape == (32,)
    assert not onnx.numpy_helper.to_array(inits['model.backbone.layers.2.weight_zero_point']).any()
    # per-channel activation ranges where the int8 conv meets tanh: the Q of its input (64 channels) and the DQ of
    # its output (32 channels) have one scale per channel (tasks/quant_channels.py)
    per_axis = {n.op_type: onnx.numpy_helper.to_array(inits[n.input[1]]).shape for n in graph.node
                if n.op_type in ('QuantizeLinear', 'DequantizeLinear') and n.input[0] not in inits
                and any(a.name == 'axis' for a in n.attribute)}
    assert per_axis == {'QuantizeLinear': (64,), 'DequantizeLinear': (32,)}
    reference = set5_psnr(**{'--onnx': str(fp32)})
    quantized = set5_psnr(**{'--onnx': str(int8)})
    assert reference == pytest.approx(32.51, abs=0.01)  # the fp32 export scores as the checkpoint (README)
    assert quantized < reference  # quantization was applied
    assert reference - quantized < 0.1  # measured 0.035 dB (docs/deploy.md section 4); per-tensor ranges: 0.11


def test_per_tensor_boundaries_flag_keeps_one_scale_per_tensor(tmp_path):
    int8 = tmp_path / 'per_tensor.onnx'
    quantize.main([str(ESPCN_X3), str(CKPT_X3), '--calib', str(REPO / 'tests' / 'assets' / 'sr' / 'T91'),
                   '--num-images', '4', '--output', str(int8), '--per-tensor-boundaries', '--threads', '1'])
    nodes = onnx.load(str(int8)).graph.node
    quantizers = [n for n in nodes if n.op_type == 'QuantizeLinear']
    assert quantizers  # quantized, with no per-channel activation quantizer among them
    assert not any(a.name == 'axis' for n in quantizers for a in n.attribute)


def test_default_exclusions_are_the_first_and_last_layers(espcn_x3_int8):
    _, fp32 = espcn_x3_int8
    assert quantize.default_exclusions(str(fp32)) == ['/model/backbone/layers/layers.0/Conv', '/model/head/conv/Conv']
    graph = onnx.load(str(espcn_x3_int8[0])).graph
    float_convs = [n.name for n in graph.node if n.op_type == 'Conv'
                   and not any('DequantizeLinear' in i for i in n.input[:2])]
    assert sorted(float_convs) == ['/model/backbone/layers/layers.0/Conv', '/model/head/conv/Conv']


def test_common_crop_and_reader():
    arrays = [np.zeros((1, 1, 5, 7), np.float32), np.arange(48, dtype=np.float32).reshape(1, 1, 6, 8)]
    cropped = quantize.center_crop_common(arrays)
    assert [a.shape for a in cropped] == [(1, 1, 5, 7), (1, 1, 5, 7)]
    np.testing.assert_array_equal(cropped[1][0, 0, 0], np.arange(0, 7))  # offsets (0, 0): (6-5)//2, (8-7)//2
    reader = quantize.ArrayReader('input', cropped)
    assert reader.get_next()['input'] is cropped[0] and reader.get_next() is not None and reader.get_next() is None
    reader.rewind()
    assert reader.get_next() is not None


def test_bad_calibration_source_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='neither a folder nor one of train, val, test'):
        quantize.main([str(ESPCN_X3), '--calib', str(tmp_path / 'missing'), '--output', str(tmp_path / 'q.onnx')])
    with pytest.raises(ValueError, match='has no images'):
        quantize.main([str(ESPCN_X3), '--calib', str(tmp_path), '--output', str(tmp_path / 'q.onnx')])
