"""The command-line tools, run as a user would: export, benchmark, infer (image, video), evaluate, convert."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools'))

import benchmark  # noqa: E402
import convert_weights  # noqa: E402
import evaluate  # noqa: E402
import export  # noqa: E402
import infer  # noqa: E402

ESPCN = REPO / 'configs' / 'espcn_x2_500e_t91.py'


@pytest.fixture(scope='module')
def espcn_checkpoint(tmp_path_factory):
    """A randomly initialised ESPCN x2 checkpoint, saved as the Runner would."""
    from tasks import build_model
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('ckpt') / 'espcn_x2.pth'
    torch.save({'state_dict': build_model(ESPCN).state_dict(), 'meta': {'epoch': 1}}, path)
    return path


def test_export_round_trip_matches_onnxruntime(tmp_path, espcn_checkpoint):
    diffs = export.main([str(ESPCN), str(espcn_checkpoint), '--output', str(tmp_path / 'espcn.onnx'),
                         '--shape', '1', '24', '20'])
    assert (tmp_path / 'espcn.onnx').stat().st_size > 50_000  # weights inside the file
    assert max(diffs) < 1e-5


def test_benchmark_reports_parameters_macs_and_latency():
    report = benchmark.benchmark(ESPCN, shape=(1, 32, 32), runs=3, warmup=1)
    assert report['params'] == 1664 + 18464 + 1156  # 5x5x64, 3x3x64x32, 3x3x32x4 (+ biases)
    # multiply-adds per LR pixel: 25*64 + 9*64*32 + 9*32*4
    assert report['macs'] == 32 * 32 * (25 * 64 + 9 * 64 * 32 + 9 * 32 * 4)
    assert report['tensor']['median_ms'] > 0 and report['predict']['median_ms'] > 0


def test_benchmark_counts_mobilenet_v2_like_the_paper():
    report = benchmark.benchmark(REPO / 'configs' / 'classifier_mobilenetv2_1x_imagenet.py', runs=1, warmup=0,
                                 predict=False)
    assert report['params'] == 3_504_872
    assert 290e6 < report['macs'] < 310e6  # paper: ~300M multiply-adds


def test_infer_on_an_image_writes_the_comparison_and_the_sr_image(tmp_path, espcn_checkpoint):
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'photo.png'), image)
    written = infer.main([str(ESPCN), str(espcn_checkpoint), '--input', str(tmp_path / 'photo.png'),
                          '--output', str(tmp_path / 'out'), '--save-raw'])
    assert sorted(str(Path(p).relative_to(tmp_path / 'out')) for p in written) == ['photo.png', 'raw/photo.png']
    assert cv2.imread(str(tmp_path / 'out' / 'raw' / 'photo.png')).shape == (40, 60, 3)
    assert cv2.imread(str(tmp_path / 'out' / 'photo.png')).shape[1] > 2 * 60  # side by side


def test_infer_on_a_video_keeps_frame_count_and_rate(tmp_path, espcn_checkpoint):
    video = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 12.0, (32, 24))
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    written = infer.main([str(ESPCN), str(espcn_checkpoint), '--input', str(video), '--output', str(tmp_path / 'o')])
    capture = cv2.VideoCapture(written[0])
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    ok, frame = capture.read()
    assert ok and frame.shape[0] == 48


def test_infer_names_a_missing_input(tmp_path, espcn_checkpoint):
    with pytest.raises(FileNotFoundError, match='no input matches'):
        infer.main([str(ESPCN), str(espcn_checkpoint), '--input', str(tmp_path / 'nothing*.png'),
                    '--output', str(tmp_path / 'o')])


def test_evaluate_psnr_cli_prints_json(tmp_path, assets):
    from data.io import read_rgb, write_rgb
    from data.transforms import bicubic_downscale, bicubic_resize, mod_crop
    for name in ('baby', 'bird'):
        hr = mod_crop(read_rgb(assets / 'sr' / 'Set5' / f'{name}.png'), 3)
        write_rgb(tmp_path / f'{name}.png', bicubic_resize(bicubic_downscale(hr, 3), hr.shape[:2]))
        write_rgb(tmp_path / 'gt' / f'{name}.png', hr)
    out = subprocess.run([sys.executable, str(REPO / 'tools' / 'evaluate.py'), '--metric', 'psnr', '--pred-dir',
                          str(tmp_path), '--gt-dir', str(tmp_path / 'gt'), '--scale', '3', '--json'],
                         capture_output=True, text=True, check=True)
    metrics = json.loads(out.stdout)
    assert metrics['num_images'] == 2
    assert metrics['per_image']['baby']['psnr'] == pytest.approx(33.92, abs=0.05)  # Set5 baby x3 bicubic


def test_evaluate_names_missing_predictions(tmp_path, assets):
    (tmp_path / 'pred').mkdir()
    with pytest.raises(FileNotFoundError, match='baby'):
        evaluate.main(['--metric', 'psnr', '--pred-dir', str(tmp_path / 'pred'), '--gt-dir',
                       str(assets / 'sr' / 'Set5'), '--scale', '3'])


def test_evaluate_pairs_colliding_stems_the_way_infer_names_them(tmp_path):
    """Ground truth photo.jpg and photo.png: tools/infer.py writes photo.jpg.png and photo.png.png (data.io.unique_names);
    each is scored against its own ground truth (before: both were keyed 'photo' and the pairing failed)."""
    from data.evaluators import match_by_stem
    from data.io import write_rgb
    rng = np.random.default_rng(0)
    (tmp_path / 'gt').mkdir(), (tmp_path / 'pred').mkdir()
    for suffix in ('jpg', 'png'):
        write_rgb(tmp_path / 'gt' / f'photo.{suffix}', rng.integers(0, 255, (12, 12, 3), dtype=np.uint8))
        write_rgb(tmp_path / 'pred' / f'photo.{suffix}.png', rng.integers(0, 255, (12, 12, 3), dtype=np.uint8))
    pairs = match_by_stem(str(tmp_path / 'pred'), str(tmp_path / 'gt'), ('.png', '.jpg'))
    assert [(p.name, g.name) for p, g in pairs] == [('photo.jpg.png', 'photo.jpg'), ('photo.png.png', 'photo.png')]
    write_rgb(tmp_path / 'pred' / 'photo.jpg.jpg', np.zeros((12, 12, 3), np.uint8))  # two files, one name
    with pytest.raises(ValueError, match='two predictions for .photo.jpg.'):
        match_by_stem(str(tmp_path / 'pred'), str(tmp_path / 'gt'), ('.png', '.jpg'))


def test_convert_torchvision_classifier_gives_the_same_logits(tmp_path):
    from tasks import build_model
    tv = torchvision.models.mobilenet_v3_small(weights=None).eval()
    src, dst = tmp_path / 'tv.pth', tmp_path / 'ours.pth'
    torch.save(tv.state_dict(), src)
    convert_weights.main(['--arch', 'mobilenet_v3_small', str(src), str(dst)])
    cfg = dict(default_scope='mobilevision', model=dict(
        type='ImageClassifier', backbone=dict(type='MobileNetV3', arch='small'),
        head=dict(type='LinearClsHead', num_classes=1000, hidden_channels=1024)))
    ours = build_model(cfg, str(dst))
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, mode='tensor'), tv(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('tool', ['train', 'test', 'infer', 'export', 'benchmark', 'convert_weights', 'evaluate',
                                  'publish_checkpoint'])
def test_every_tool_has_help(tool, capsys):
    module = __import__(tool)
    with pytest.raises(SystemExit) as exit_info:
        (module.main if tool == 'evaluate' else module.parse_args)(['--help'])
    assert exit_info.value.code == 0
    assert 'usage' in capsys.readouterr().out


def test_tools_report_bad_input_in_one_line(tmp_path):
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    out = subprocess.run([sys.executable, str(REPO / 'tools' / 'test.py'), str(ESPCN), str(tmp_path / 'notes.pth')],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(
        f'error: cannot read checkpoint {tmp_path / "notes.pth"}: not a PyTorch checkpoint')
    assert 'Traceback' not in out.stderr
