"""One error contract for the tools (issue 13, items 3, 10, 12): bad input ends with one ``error:`` line naming the
file and exit status 2, found before mmengine's Runner prints its environment; valid JSON out of ``test.py``."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.cli import group_per_class, json_safe, run_cli

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools'))
import benchmark  # noqa: E402
import convert_weights  # noqa: E402
import evaluate  # noqa: E402
import export  # noqa: E402
import publish_checkpoint  # noqa: E402
import test as test_tool  # noqa: E402

X2 = REPO / 'configs' / 'espcn_x2_500e_t91.py'
X2_WEIGHTS = REPO / 'checkpoints' / 'espcn_x2_t91.pth'


def error_line(capsys, main, argv) -> str:
    """Run a tool's ``main`` as its ``__main__`` does; return its single stderr line (exit status must be 2)."""
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: main(argv))
    assert info.value.code == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), out.err
    assert 'System environment' not in out.out + out.err  # before the Runner's environment dump
    return lines[0]


# ----- item 12: missing files, named, exit 2 --------------------------------------------------------------------

def test_missing_config_and_checkpoint(tmp_path, capsys):
    missing = tmp_path / 'nope.py'
    assert error_line(capsys, test_tool.main, [str(missing), str(X2_WEIGHTS)]) == \
        f'error: config file {missing} does not exist'
    ckpt = tmp_path / 'nope.pth'
    assert error_line(capsys, test_tool.main, [str(X2), str(ckpt)]) == f'error: checkpoint {ckpt} does not exist'
    assert error_line(capsys, export.main, [str(X2), str(ckpt), '--output', str(tmp_path / 'm.onnx')]) == \
        f'error: checkpoint {ckpt} does not exist'
    assert error_line(capsys, benchmark.main, [str(missing)]) == f'error: config file {missing} does not exist'
    assert error_line(capsys, convert_weights.main, ['--arch', 'mobilenet_v2', str(ckpt), str(tmp_path / 'o.pth')]) \
        == f'error: source checkpoint {ckpt} does not exist'
    assert error_line(capsys, publish_checkpoint.main, [str(ckpt), str(tmp_path / 'o.pth')]) == \
        f'error: checkpoint {ckpt} does not exist'
    assert not (tmp_path / 'o.pth').exists()


def test_evaluate_names_a_missing_folder(tmp_path, capsys, assets):
    argv = ['--metric', 'psnr', '--pred-dir', str(tmp_path / 'sr'), '--gt-dir', str(assets / 'sr' / 'Set5'),
            '--scale', '3']
    assert error_line(capsys, evaluate.main, argv) == f'error: prediction folder {tmp_path / "sr"} does not exist'


def test_test_tool_checks_the_dataset_before_the_runner(tmp_path, capsys):
    line = error_line(capsys, test_tool.main, [str(X2), str(X2_WEIGHTS), '--cfg-options',
                                               f'test_dataloader.dataset.data_root={tmp_path / "Set5"}'])
    assert line == (f'error: config {X2}: test_dataloader.dataset.data_root = {tmp_path / "Set5"} does not exist')


def test_publish_refuses_a_file_without_weights(tmp_path, capsys):
    torch.save({'meta': {'epoch': 3}}, tmp_path / 'meta.pth')
    assert error_line(capsys, publish_checkpoint.main, [str(tmp_path / 'meta.pth'), str(tmp_path / 'o.pth')]) == \
        f'error: checkpoint {tmp_path / "meta.pth"} has no state_dict (not a training checkpoint)'


def test_export_names_the_missing_onnx_package_and_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxscript', None)  # as if it were not installed
    line = error_line(capsys, export.main, [str(X2), '--output', str(tmp_path / 'm.onnx')])
    assert line == ("error: ONNX export needs the package(s) onnxscript, which are not installed: install the export "
                    "extra with pip install -e '.[export]'")
    assert not (tmp_path / 'm.onnx').exists()


def test_metrics_json_has_class_names_as_keys_and_no_nan():
    metrics = {'aAcc': np.float64(0.9), 'mIoU': 0.5, 'IoU.background': 0.8, 'IoU.cat': float('nan'),
               'pascal_voc/AP_cat': np.float32(0.25), 'pascal_voc/mAP': 0.25}
    grouped = json_safe(group_per_class(metrics, ['background', 'cat']))
    assert grouped == {'aAcc': 0.9, 'mIoU': 0.5, 'IoU': {'background': 0.8, 'cat': None},
                       'pascal_voc/AP': {'cat': 0.25}, 'pascal_voc/mAP': 0.25}
    json.dumps(grouped, allow_nan=False)  # strict JSON


@pytest.mark.slow
def test_test_tool_writes_strict_json(tmp_path, assets):
    set5 = tmp_path / 'Set5'
    set5.mkdir()
    (set5 / 'bird.png').write_bytes((assets / 'sr' / 'Set5' / 'bird.png').read_bytes())
    test_tool.main([str(X2), str(X2_WEIGHTS), '--out', str(tmp_path / 'm.json'), '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', f'test_dataloader.dataset.data_root={set5}'])
    metrics = json.loads((tmp_path / 'm.json').read_text())
    assert set(metrics) == {'sr/PSNR', 'sr/SSIM', 'sr/bicubic_PSNR', 'sr/bicubic_SSIM'}
    assert metrics['sr/PSNR'] > metrics['sr/bicubic_PSNR'] + 1  # the trained x2 weights beat bicubic


# ----- item 10: depth predictions as FastDepth writes them; unreadable .npy files ---------------------------------

def _depth_folders(tmp_path, pred_shape):
    gt = np.full((4, 6), 2.0, np.float32)
    gt[0, 0] = 0  # invalid pixel
    pred = np.full(pred_shape, 2.2, np.float32)
    (tmp_path / 'gt').mkdir()
    (tmp_path / 'pred').mkdir()
    np.save(tmp_path / 'gt' / 'frame.npy', gt)
    np.save(tmp_path / 'pred' / 'frame.npy', pred)
    return ['--metric', 'depth', '--pred-dir', str(tmp_path / 'pred'), '--gt-dir', str(tmp_path / 'gt')]


def test_depth_scores_1x1xHxW_predictions(tmp_path):
    metrics = evaluate.main(_depth_folders(tmp_path, (1, 1, 4, 6)))
    assert metrics['num_images'] == 1
    assert metrics['RMSE'] == pytest.approx(0.2, rel=1e-6) and metrics['AbsRel'] == pytest.approx(0.1, rel=1e-6)
    assert metrics['delta1'] == 1.0


def test_depth_refuses_real_shape_mismatches_and_bad_files(tmp_path, capsys):
    argv = _depth_folders(tmp_path, (1, 4, 5))
    pred = tmp_path / 'pred' / 'frame.npy'
    assert error_line(capsys, evaluate.main, argv) == \
        f'error: {pred}: prediction of shape (1, 4, 5) does not match the ground truth (4, 6) (size-1 axes aside)'
    pred.write_bytes(b'')
    assert error_line(capsys, evaluate.main, argv) == f'error: predicted depth file {pred} is empty (0 bytes)'
    pred.write_text('depth in metres: 2.5')
    assert error_line(capsys, evaluate.main, argv).startswith(f'error: predicted depth file {pred} is not a .npy')
    np.save(pred, np.array([{'depth': 1}], dtype=object), allow_pickle=True)
    line = error_line(capsys, evaluate.main, argv)
    assert line == f'error: predicted depth file {pred} holds Python objects, not a numeric array'
    assert 'allow_pickle' not in line


# ----- item 3: one validation of COCO ground truth for the dataset reader and the offline scorer ------------------

def _coco_gt(tmp_path, bbox, category_id=1):
    gt = dict(images=[dict(id=1, file_name='a.png', height=40, width=40)],
              annotations=[dict(id=7, image_id=1, category_id=category_id, bbox=bbox, area=100.0, iscrowd=0)],
              categories=[dict(id=1, name='cat')])
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    (tmp_path / 'res.json').write_text(json.dumps([dict(image_id=1, category_id=1, bbox=[0, 0, 10, 10], score=0.9)]))
    return ['--metric', 'coco', '--ann-file', str(tmp_path / 'gt.json'), str(tmp_path / 'res.json')]


@pytest.mark.parametrize('bbox,category_id,problem', [
    ([0, 0, 10, 10], 3, 'has category_id 3, which is not in "categories"'),
    ([5, 5, -4, 10], 1, 'has a negative width or height in bbox [5, 5, -4, 10]'),
])
def test_coco_ground_truth_rejected_alike_by_evaluate_and_the_dataset(tmp_path, capsys, bbox, category_id, problem):
    from data.datasets import CocoDetection
    argv = _coco_gt(tmp_path, bbox, category_id)
    expected = f'{tmp_path / "gt.json"}: annotation id 7 {problem}'
    assert error_line(capsys, evaluate.main, argv) == f'error: {expected}'
    with pytest.raises(ValueError) as info:
        CocoDetection(str(tmp_path / 'gt.json'), str(tmp_path))
    assert str(info.value) == expected


def test_coco_evaluation_needs_area(tmp_path, capsys):
    argv = _coco_gt(tmp_path, [0, 0, 10, 10])
    gt = json.loads((tmp_path / 'gt.json').read_text())
    del gt['annotations'][0]['area']
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    assert error_line(capsys, evaluate.main, argv) == \
        f'error: {tmp_path / "gt.json"}: annotation id 7 has area None; COCO evaluation needs a number >= 0'
    gt['annotations'][0]['area'] = 100.0
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    assert evaluate.main(argv)['bbox'][0] == pytest.approx(1.0)  # the same box: AP 1


# ----- what a new user hits first: counts, shapes, an ONNX file as checkpoint, a folder as config ------------------

import infer  # noqa: E402
import prune  # noqa: E402
import quantize  # noqa: E402
import train  # noqa: E402

LRASPP = REPO / 'configs' / 'lraspp_mobilenetv3-large_30e_coco-voc.py'


def usage_error(capsys, parse_args, argv) -> str:
    """argparse's usage error: exit status 2, its last stderr line ``<prog>: error: ...``."""
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize('tool,argv', [
    (test_tool, [str(X2), str(X2_WEIGHTS)]),
    (infer, [str(X2), str(X2_WEIGHTS), '--input', 'a.png', '--output', 'out']),
    (benchmark, [str(X2)]),
    (quantize, [str(X2), str(X2_WEIGHTS), '--calib', 'test', '--output', 'q.onnx']),
    (prune, [str(X2), '--target-macs', '1G', '--output', 'out']),
    (train, [str(X2)]),
])
def test_threads_zero_is_a_usage_error(capsys, tool, argv):
    assert tool.parse_args(argv + ['--threads', '2']).threads == 2
    assert usage_error(capsys, tool.parse_args, argv + ['--threads', '0']).endswith(
        'error: argument --threads: must be >= 1, got 0')
    assert usage_error(capsys, tool.parse_args, argv + ['--threads', 'two']).endswith(
        "error: argument --threads: expected a whole number >= 1, got 'two'")


def test_benchmark_and_export_counts(capsys):
    assert usage_error(capsys, benchmark.parse_args, [str(X2), '--runs', '0']).endswith(
        'error: argument --runs: must be >= 1, got 0')  # was an IndexError traceback out of numpy
    assert benchmark.parse_args([str(X2), '--warmup', '0']).warmup == 0
    assert usage_error(capsys, benchmark.parse_args, [str(X2), '--warmup', '-1']).endswith(
        'error: argument --warmup: must be >= 0, got -1')
    assert usage_error(capsys, export.parse_args, [str(X2), '--output', 'm.onnx', '--max-det', '0']).endswith(
        'error: argument --max-det: must be >= 1, got 0')


def test_shape_is_checked_against_the_config(tmp_path, capsys):
    out = str(tmp_path / 'm.onnx')
    # 2 numbers for a C H W model was exported as an unbatched 3-D input before (a silently wrong file)
    assert error_line(capsys, export.main, [str(X2), '--output', out, '--shape', '224', '224']) == (
        f'error: --shape 224 224 has 2 numbers; the config {X2} takes 3 (channels first, without batch, like its '
        'benchmark_shape 1 256 256)')
    assert error_line(capsys, export.main, [str(X2), '--output', out, '--shape', '1', '-5', '224']) == \
        'error: --shape 1 -5 224: every size must be >= 1'
    assert error_line(capsys, benchmark.main, [str(X2), '--shape', '3', '64', '64']) == (
        f'error: --shape 3 64 64 has 3 channels; the config {X2} takes 1 (its benchmark_shape is 1 256 256)')
    assert not (tmp_path / 'm.onnx').exists()


def test_an_onnx_file_is_not_taken_for_a_checkpoint(tmp_path, capsys):
    onnx_file = tmp_path / 'model.onnx'
    onnx_file.write_bytes(b'\x08\x99\x01random protobuf bytes')
    assert error_line(capsys, test_tool.main, [str(X2), str(onnx_file)]) == (
        f'error: checkpoint {onnx_file} is an ONNX file, not a PyTorch checkpoint; run an ONNX file with --onnx FILE')
    assert error_line(capsys, export.main, [str(X2), str(onnx_file), '--output', str(tmp_path / 'm2.onnx')]) == \
        f'error: checkpoint {onnx_file} is an ONNX file, not a PyTorch checkpoint'
    assert error_line(capsys, benchmark.main, [str(X2), '--checkpoint', str(onnx_file)]) == (
        f'error: checkpoint {onnx_file} is an ONNX file, not a PyTorch checkpoint; run an ONNX file with '
        '--backend onnxruntime --onnx FILE')


def test_a_folder_given_as_config_is_named_as_such(tmp_path, capsys):
    folder = tmp_path / 'configs'
    folder.mkdir()
    expected = f'error: config file {folder} is not a file'
    assert error_line(capsys, infer.main, [str(folder), str(X2_WEIGHTS), '--input', str(folder),
                                           '--output', str(tmp_path / 'out')]) == expected
    assert error_line(capsys, train.main, [str(folder), '--work-dir', str(tmp_path / 'w')]) == expected
    assert error_line(capsys, prune.main, [str(folder), '--target-macs', '1G', '--output', str(tmp_path / 'p')]) == \
        expected


def test_with_nms_on_a_segmentation_config_is_one_error_line(tmp_path, capsys):
    # a TypeError traceback out of tasks.detection.nms_export before
    line = error_line(capsys, export.main, [str(LRASPP), '--output', str(tmp_path / 'm.onnx'), '--with-nms',
                                            '--shape', '3', '64', '64'])
    assert line == (f'error: {LRASPP}: --with-nms needs an SSD-style Detector (with anchor_generator); Segmentor has '
                    'none')
    assert not (tmp_path / 'm.onnx').exists()


def test_memory_shape_is_a_photo_shape():
    """``benchmark.py --memory`` feeds ``--shape`` to the predict path (an RGB photo for ESPCN, whose network takes
    luma): its channel count is not the network's, only its length and sizes are checked."""
    from tasks import load_config
    from tasks.cli import input_shape
    cfg = load_config(str(X2))
    assert input_shape(cfg, [3, 600, 800], str(X2), channels=False) == (3, 600, 800)
    with pytest.raises(ValueError, match='has 3 channels'):
        input_shape(cfg, [3, 600, 800], str(X2))
    with pytest.raises(ValueError, match='has 2 numbers'):
        input_shape(cfg, [600, 800], str(X2), channels=False)
    assert input_shape(cfg, None, str(X2)) == (1, 256, 256)


# ----- --help of every tool and benchmark explains every option; benchmarks end bad input with one line too ------

import importlib.util  # noqa: E402
import os  # noqa: E402

SCRIPTS = sorted([p for p in (REPO / 'tools').glob('*.py')] + [p for p in (REPO / 'benchmarks').glob('*.py')])


def _script(path: Path):
    spec = importlib.util.spec_from_file_location(f'_script_{path.parent.name}_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _undocumented_options(help_text: str):
    """Option lines of argparse's help with no description on the line or the next (wrapped) one."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('options:'))
    missing = []
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if not line.startswith('  -'):
            continue
        described = '  ' in line.strip()  # option and description on one line
        wrapped = i + 1 < len(lines) and lines[i + 1].startswith(' ' * 6)  # options are indented by 2 only
        if not (described or wrapped):
            missing.append(line.strip())
    return missing


@pytest.mark.parametrize('path', SCRIPTS, ids=lambda p: f'{p.parent.name}/{p.name}')
def test_help_explains_every_option(path, capsys, monkeypatch):
    monkeypatch.setenv('COLUMNS', '120')
    monkeypatch.setattr(sys, 'path', sys.path[:])  # the scripts put their folders on it
    module = _script(path)
    entry = getattr(module, 'parse_args', None) or module.main
    if path.name == 'evaluate.py':  # the scorer's options come with --metric
        argv = ['--metric', 'psnr', '--help']
    else:
        argv = ['--help']
    with pytest.raises(SystemExit) as info:
        entry(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith('usage:') and 'Traceback' not in out
    assert _undocumented_options(out) == []
    if path.name != 'reversible_memory.py':  # its children measure peak RSS: they must not import the task package
        assert 'run_cli(' in path.read_text()  # bad input ends with one error line, exit 2


def test_benchmarks_end_bad_input_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, 'path', sys.path[:])
    missing = tmp_path / 'photo.jpg'
    assert error_line(capsys, _script(REPO / 'benchmarks' / 'ssdlite_vs_torchvision.py').main,
                      ['--image', str(missing), '--runs', '1']) == f'error: image file {missing} does not exist'
    assert error_line(capsys, _script(REPO / 'benchmarks' / 'fastdepth_latency.py').main,
                      [str(tmp_path / 'fd.py')]) == f'error: config file {tmp_path / "fd.py"} does not exist'
    assert usage_error(capsys, _script(REPO / 'benchmarks' / 'backbone_latency.py').main, ['--runs', '0']).endswith(
        'error: argument --runs: must be >= 1, got 0')  # was an IndexError traceback out of numpy


def test_an_output_folder_is_refused_before_any_work(tmp_path, capsys):
    folder = tmp_path / 'out'
    folder.mkdir()
    # an IsADirectoryError after the export (or the calibration) before
    assert error_line(capsys, export.main, [str(X2), '--output', str(folder), '--shape', '1', '16', '16']) == \
        f'error: --output {folder} is a folder; give the file to write'
    assert error_line(capsys, quantize.main, [str(X2), '--calib', str(folder), '--output', str(tmp_path / 'q.onnx'),
                                              '--fp32-output', str(folder)]) == \
        f'error: --fp32-output {folder} is a folder; give the file to write'


def test_an_onnx_file_of_another_model_is_named_as_such(tmp_path):
    """An ONNX file of another config (other channel count) is not a size problem: no ``--dynamic`` hint."""
    pytest.importorskip('onnxruntime')
    from tasks.onnx_backend import OnnxNetwork
    path = tmp_path / 'gray.onnx'
    torch.onnx.export(torch.nn.Conv2d(1, 2, 3), (torch.zeros(1, 1, 8, 8),), str(path), input_names=['input'],
                      dynamic_axes={'input': {0: 'b', 2: 'h', 3: 'w'}}, dynamo=False)
    network = OnnxNetwork(str(path))
    assert network.run(torch.zeros(1, 1, 12, 10))[0].shape == (1, 2, 10, 8)
    with pytest.raises(ValueError) as info:
        network.run(torch.zeros(1, 3, 12, 10))
    assert str(info.value) == (f'{path} takes inputs of shape ?x1x?x?, got 1x3x12x10; it is not an ONNX file of this '
                               'config (another rank or channel count): export this config with tools/export.py')
