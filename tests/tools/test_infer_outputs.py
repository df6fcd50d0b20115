"""tools/infer.py and the Inferencer as a user meets them: one input rule for arrays, detection pictures that say
what they show, outputs that never overwrite an input and never collide, raw files that tools/evaluate.py reads
as they are, the SR video, and one `error:` line for bad input."""
import hashlib
import json
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from data.io import file_stem, read_rgb, unique_names, write_rgb
from tasks import Inferencer, build_model
from tasks.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools'))

import evaluate  # noqa: E402
import infer  # noqa: E402

CONFIGS = REPO / 'configs'
ESPCN_X2 = CONFIGS / 'espcn_x2_500e_t91.py'
SSDLITE = next(CONFIGS.glob('ssdlite_mobilenetv2_*e_coco.py'))  # SSDLite-MobileNetV2 on COCO, whatever its schedule
COCO8 = REPO / 'tests' / 'assets' / 'detection' / 'coco8'


def _checkpoint(config, path: Path) -> Path:
    """A randomly initialised checkpoint of ``config`` (as the Runner saves it)."""
    torch.manual_seed(0)
    torch.save({'state_dict': build_model(config).state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def espcn_x2(tmp_path_factory):
    return _checkpoint(ESPCN_X2, tmp_path_factory.mktemp('ckpt') / 'espcn_x2.pth')


@pytest.fixture(scope='module')
def ssdlite(tmp_path_factory):
    return _checkpoint(SSDLITE, tmp_path_factory.mktemp('ckpt') / 'ssdlite.pth')


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gradient(h: int, w: int, shift: int = 0) -> np.ndarray:
    """A smooth RGB test image (codecs keep it nearly intact)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 255 // max(w - 1, 1) + shift) % 256, y * 255 // max(h - 1, 1),
                     np.full_like(x, 128 + shift % 64)], -1).astype(np.uint8)


def _cli(argv, capsys):
    """``tools/infer.py`` as its ``__main__`` runs it: ``(exit status, stdout, stderr)``."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: infer.main(argv))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


# --- 4. one rule for arrays: uint8 0-255, float 0-1 ---------------------------------------------------------------
TASK_CONFIGS = {
    'super_resolution': ESPCN_X2,
    'detection': SSDLITE,
    'segmentation': dict(model=dict(type='Segmentor', num_classes=21,
                                    backbone=dict(type='MobileNetV2', width_mult=0.25, out_indices=(-2,)),
                                    head=dict(type='DeepLabHead'))),
    'depth': CONFIGS / 'fastdepth_mobilenetv1_20e_nyu.py',
}


@pytest.mark.slow
@pytest.mark.parametrize('task', sorted(TASK_CONFIGS))
def test_float_images_in_0_1_equal_uint8_and_0_255_floats_are_refused(task):
    from mmengine.config import Config
    config = TASK_CONFIGS[task]
    inferencer = Inferencer(Config(config) if isinstance(config, dict) else config)
    image = _gradient(24, 32, shift=7)
    expected = inferencer(image)
    as_float = inferencer(image.astype(np.float32) / 255.0)
    assert sorted(as_float) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(np.asarray(as_float[key]), np.asarray(value), err_msg=key)
    with pytest.raises(ValueError, match=r'must lie in \[0, 1\], got values in \[0, 255\]'):
        inferencer(image.astype(np.float32))
    with pytest.raises(ValueError, match='uint8 .* or float .* got dtype int32'):
        inferencer(image.astype(np.int32))
    with pytest.raises(ValueError, match=r'HxWx3 RGB image, got an array of shape \(24, 32\)'):
        inferencer(image[..., 0])
    assert inferencer.visualize(image.astype(np.float64) / 255.0, expected).dtype == np.uint8


# --- 5. detection pictures: threshold, caption, sizes -----------------------------------------------------------
def test_detection_picture_draws_boxes_above_the_threshold_and_says_how_many():
    from data.visualization.boxes import detection_caption, draw_detections
    image = np.zeros((200, 300, 3), np.uint8)
    result = dict(bboxes=np.array([[10, 10, 60, 60], [100, 20, 150, 80], [200, 30, 260, 90]], np.float32),
                  scores=np.array([0.9, 0.5, 0.1], np.float32), labels=np.array([0, 1, 2]))
    picture, drawn, total = draw_detections(image, result, 0.3, ['a', 'b', 'c'])
    assert (drawn, total) == (2, 3)
    assert detection_caption(drawn, total, 0.3) == '2 of 3 boxes (score >= 0.30)'
    assert picture[45, 10].any() and picture[60, 100].any()   # left edges of the two boxes drawn
    assert not picture[60:90, 200].any()                       # the 0.1 box is not
    assert picture[-12:-6, 8:60].any()                         # the caption, bottom-left
    everything, drawn, _ = draw_detections(image, result, 0.0)
    assert drawn == 3 and everything[60:90, 200].any()


def _stroke_width(picture: np.ndarray, row: int, x: int) -> int:
    """Width of the drawn vertical line through column ``x`` at ``row``."""
    line = picture[row].any(-1)
    left = right = x
    while left > 0 and line[left - 1]:
        left -= 1
    while right + 1 < len(line) and line[right + 1]:
        right += 1
    return right - left + 1


def test_box_lines_and_labels_scale_with_the_image():
    from data.visualization.boxes import draw_boxes, label_scale, line_width
    assert [line_width((h, w)) for h, w in ((120, 160), (480, 640), (2160, 3840))] == [1, 2, 12]
    assert label_scale((480, 640)) == 0.5 and label_scale((100, 100)) == 0.35 and label_scale((2160, 3840)) == 3.0
    widths, label_heights = [], []
    for side in (160, 2560):
        image = np.zeros((side, side, 3), np.uint8)
        box = np.array([[side / 4, side / 2, side * 3 / 4, side * 0.9]], np.float32)
        picture = draw_boxes(image, box, [0], [0.5], ['person'])
        widths.append(_stroke_width(picture, int(side * 0.7), int(side / 4)))
        label_heights.append(int(picture[:int(side / 2) - 1, int(side / 4) + 1].any(-1).sum()))  # filled label box
    assert widths[0] == 1 and abs(widths[1] - line_width((2560, 2560))) <= 1
    assert label_heights[1] > 4 * label_heights[0] > 0  # font scale 2.0 against the 0.35 floor


@pytest.mark.slow
def test_infer_score_thr_and_the_log_of_what_was_drawn(tmp_path, ssdlite, capsys):
    image = COCO8 / 'images' / 'val' / '000000000036.jpg'
    code = [str(SSDLITE), str(ssdlite), '--input', str(image), '--output', str(tmp_path)]
    infer.main(code + ['--score-thr', '0'])
    drawn, total = map(int, re.search(rf'{re.escape(str(image))}: drew (\d+) of (\d+) detections \(score >= 0.00\)',
                                      capsys.readouterr().out).groups())
    assert drawn == total > 0
    everything = read_rgb(tmp_path / '000000000036.png')
    infer.main(code + ['--score-thr', '1'])
    assert f'{image}: drew 0 of {total} detections (score >= 1.00)' in capsys.readouterr().out
    nothing = read_rgb(tmp_path / '000000000036.png')
    original = read_rgb(image)
    assert (nothing[:400] == original[:400]).all() and (everything[:400] != original[:400]).any()  # above caption
    assert (nothing[-20:, :60] != original[-20:, :60]).any()                                  # the caption
    with pytest.raises(SystemExit):
        infer.parse_args(code + ['--score-thr', '30'])
    assert '--score-thr must lie in [0, 1], got 30.0' in capsys.readouterr().err


# --- 6, 7. outputs never overwrite an input and never collide ---------------------------------------------------
def test_output_names_are_unique_per_input():
    assert unique_names(['d/photo.jpg', 'd/photo.png', 'd/a.b.jpg', 'x/c.png', 'y/c.png', 'd/v.nii.gz']) == \
        ['photo.jpg', 'photo.png', 'a.b', 'x_c.png', 'y_c.png', 'v']
    assert unique_names(['d/A.png', 'd/a.jpg']) == ['A.png', 'a.jpg']  # case-insensitive file systems
    assert unique_names(['a/x.png', 'b/a/x.png']) == ['a_x.png', 'a_x.png_1']
    assert file_stem('dir/x.nii.gz') == 'x' and file_stem('dir/a.b.jpg') == 'a.b'


def test_infer_into_its_input_folder_keeps_every_input(tmp_path, espcn_x2):
    folder = tmp_path / 'photos'
    for name, shift in (('photo.png', 0), ('photo.jpg', 40), ('a.b.png', 80), ('a.b_vis.png', 120)):
        write_rgb(folder / name, _gradient(12, 16, shift))
    before = {p.name: _digest(p) for p in folder.iterdir()}
    written = infer.main([str(ESPCN_X2), str(espcn_x2), '--input', str(folder), '--output', str(folder),
                          '--save-raw'])
    assert {p.name: _digest(p) for p in folder.iterdir() if p.name in before} == before
    assert sorted(str(Path(p).relative_to(folder)) for p in written) == sorted(
        ['a.b_vis_vis.png', 'raw/a.b.png',            # a.b.png and a.b_vis.png are inputs
         'a.b_vis_vis_vis.png', 'raw/a.b_vis.png',    # ... and a.b_vis_vis.png is a.b's picture
         'photo.jpg.png', 'raw/photo.jpg.png', 'photo.png.png', 'raw/photo.png.png'])
    sr_jpg, sr_png = read_rgb(folder / 'raw' / 'photo.jpg.png'), read_rgb(folder / 'raw' / 'photo.png.png')
    assert sr_jpg.shape == (24, 32, 3) and (sr_jpg != sr_png).any()  # two inputs, two outputs


def test_a_raw_output_that_would_overwrite_an_input_is_refused(tmp_path, espcn_x2, capsys):
    write_rgb(tmp_path / 'raw' / 'frame.png', _gradient(12, 16))
    before = _digest(tmp_path / 'raw' / 'frame.png')
    code, _, err = _cli([str(ESPCN_X2), str(espcn_x2), '--input', str(tmp_path / 'raw'), '--output', str(tmp_path),
                         '--save-raw'], capsys)
    assert code == 2 and err.strip().splitlines()[-1].startswith(
        f'error: refusing to write {tmp_path / "raw" / "frame.png"}: it is one of the input files')
    assert _digest(tmp_path / 'raw' / 'frame.png') == before


# --- 9. raw outputs are what tools/evaluate.py reads ------------------------------------------------------------
@pytest.mark.slow
def test_sr_raw_output_is_scored_by_evaluate_psnr_as_written(tmp_path, assets):
    from data.evaluators.image_quality import score_pair
    from data.transforms import bicubic_downscale, mod_crop
    hr_dir = assets / 'sr' / 'Set5'
    checkpoint = REPO / 'checkpoints' / 'espcn_x3_t91.pth'
    inferencer = Inferencer(CONFIGS / 'espcn_x3_500e_t91.py', checkpoint)
    expected = {}
    for hr_path in sorted(hr_dir.glob('*.png')):
        hr = mod_crop(read_rgb(hr_path), 3)
        lr = bicubic_downscale(hr, 3)
        write_rgb(tmp_path / 'lr' / hr_path.name, lr)
        expected[hr_path.stem] = score_pair(inferencer(lr)['image'], hr, 3, 'y')['psnr']
    infer.main([str(CONFIGS / 'espcn_x3_500e_t91.py'), str(checkpoint), '--input', str(tmp_path / 'lr'),
                '--output', str(tmp_path / 'out'), '--save-raw'])
    metrics = evaluate.main(['--metric', 'psnr', '--pred-dir', str(tmp_path / 'out' / 'raw'), '--gt-dir',
                             str(hr_dir), '--scale', '3'])
    assert metrics['num_images'] == 5
    assert {k: v['psnr'] for k, v in metrics['per_image'].items()} == pytest.approx(expected, abs=1e-9)
    assert metrics['PSNR'] == pytest.approx(32.51, abs=0.01)  # README: Set5 x3 from the saved RGB PNGs


@pytest.mark.slow
def test_detection_raw_output_is_one_coco_json_scored_by_evaluate_coco(tmp_path, ssdlite):
    ann_file = COCO8 / 'instances_val.json'
    images = COCO8 / 'images' / 'val'
    base = [str(SSDLITE), str(ssdlite), '--input', str(images), '--save-raw', '--score-thr', '0.5']
    by_stem = infer.main(base + ['--output', str(tmp_path / 'stems')])
    by_id = infer.main(base + ['--output', str(tmp_path / 'ids'), '--ann-file', str(ann_file)])
    assert str(tmp_path / 'stems' / 'detections.json') in by_stem and str(tmp_path / 'ids' / 'detections.json') in by_id
    stems = json.loads((tmp_path / 'stems' / 'detections.json').read_text())
    ids = json.loads((tmp_path / 'ids' / 'detections.json').read_text())
    assert len(stems) == len(ids) > 4 * 10  # every detection (random weights), whatever the drawing threshold
    assert {d['image_id'] for d in stems} == {'000000000036', '000000000042', '000000000049', '000000000061'}
    assert {d['image_id'] for d in ids} == {36, 42, 49, 61}
    assert [dict(d, image_id=int(d['image_id'])) for d in stems] == ids
    scores = [evaluate.main(['--metric', 'coco', '--ann-file', str(ann_file), str(tmp_path / run / 'detections.json')])
              for run in ('stems', 'ids')]
    assert scores[0] == scores[1] and len(scores[0]['bbox']) == 12
    stray = COCO8 / 'images' / 'train' / '000000000009.jpg'  # not an image of the val json
    with pytest.raises(ValueError, match=f'{stray}: no image of {ann_file} has this file name'):
        infer.main(base[:3] + [str(stray), '--save-raw', '--output', str(tmp_path / 'x'), '--ann-file', str(ann_file)])


def test_evaluate_coco_maps_file_stems_to_the_ground_truth_ids(tmp_path):
    ann_file = COCO8 / 'instances_val.json'
    gt = json.loads(ann_file.read_text())
    names = {image['id']: Path(image['file_name']).stem for image in gt['images']}
    perfect = [dict(image_id=names[a['image_id']], category_id=a['category_id'], bbox=a['bbox'], score=1.0)
               for a in gt['annotations']]
    (tmp_path / 'perfect.json').write_text(json.dumps(perfect))
    metrics = evaluate.main(['--metric', 'coco', '--ann-file', str(ann_file), str(tmp_path / 'perfect.json')])
    assert metrics['bbox'][0] == pytest.approx(1.0) and metrics['bbox'][1] == pytest.approx(1.0)
    (tmp_path / 'unknown.json').write_text(json.dumps([dict(perfect[0], image_id='holiday')]))
    with pytest.raises(ValueError, match=r'unknown.json: 1 image_id\(s\) .* holiday'):
        evaluate.main(['--metric', 'coco', '--ann-file', str(ann_file), str(tmp_path / 'unknown.json')])


# --- 11. super-resolution of a video is a video ------------------------------------------------------------------
def _clip(path: Path, frames: int, size=(32, 24), fps: float = 12.0, fourcc: str = 'mp4v') -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    for i in range(frames):
        writer.write(cv2.cvtColor(_gradient(size[1], size[0], 9 * i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _frames(path) -> list:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    capture.release()
    return frames


def test_sr_on_a_video_writes_the_super_resolved_video(tmp_path, espcn_x2):
    clip = _clip(tmp_path / 'clip.mp4', 7)
    written = infer.main([str(ESPCN_X2), str(espcn_x2), '--input', str(clip), '--output', str(tmp_path / 'o')])
    assert written == [str(tmp_path / 'o' / 'clip_sr.mp4')]
    sr, inputs = _frames(written[0]), _frames(clip)
    assert len(sr) == 7 and sr[0].shape == (48, 64, 3)
    inferencer = Inferencer(ESPCN_X2, espcn_x2)
    for frame, lr in zip(sr, inputs):  # the model's output (up to the codec), not a picture of it
        assert np.abs(frame.astype(int) - inferencer(lr)['image']).mean() < 4
    written = infer.main([str(ESPCN_X2), str(espcn_x2), '--input', str(clip), '--output', str(tmp_path / 'c'),
                          '--compare'])
    assert written == [str(tmp_path / 'c' / 'clip_sr.mp4'), str(tmp_path / 'c' / 'clip_compare.mp4')]
    compare = _frames(written[1])
    assert len(compare) == 7 and compare[0].shape[0] == 48 and compare[0].shape[1] > 2 * 64


# --- 12. bad input: one `error:` line naming the file, exit 2 --------------------------------------------------
def test_bad_inputs_end_with_one_error_line(tmp_path, espcn_x2, capsys):
    tool = [str(ESPCN_X2), str(espcn_x2), '--output', str(tmp_path / 'o'), '--input']
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'broken.mp4').write_bytes(b'not a video' * 20)
    cases = {str(tmp_path / 'missing.png'): f'error: input {tmp_path / "missing.png"} does not exist',
             str(tmp_path / 'empty'): f'error: folder {tmp_path / "empty"} holds no input this model reads',
             str(tmp_path / 'none*.png'): f'error: no input matches {tmp_path / "none*.png"}',
             str(tmp_path / 'broken.mp4'): f'error: cannot read video {tmp_path / "broken.mp4"}'}
    for path, message in cases.items():
        code, _, err = _cli(tool + [path], capsys)
        assert code == 2 and err.strip().splitlines()[-1].startswith(message), (path, err)
    code, _, err = _cli([str(ESPCN_X2), str(tmp_path / 'nope.pth'), '--input', str(tmp_path), '--output',
                         str(tmp_path / 'o')], capsys)
    assert code == 2 and err.strip() == f'error: checkpoint {tmp_path / "nope.pth"} does not exist'


@pytest.mark.slow
def test_a_volumetric_config_given_a_jpg_names_the_file(tmp_path, capsys):
    config = CONFIGS / 'unet3d_revmbconv_20e_synthetic.py'
    checkpoint = _checkpoint(config, tmp_path / 'unet.pth')
    write_rgb(tmp_path / 'photo.jpg', _gradient(8, 8))
    code, _, err = _cli([str(config), str(checkpoint), '--input', str(tmp_path / 'photo.jpg'), '--output',
                         str(tmp_path / 'o')], capsys)
    assert code == 2 and err.strip().splitlines()[-1] == (
        f'error: {tmp_path / "photo.jpg"}: not an input this config reads (expected .nii, .nii.gz or case folders)')


def test_a_truncated_video_warns_how_many_frames_were_read(tmp_path, espcn_x2, capsys):
    clip = _clip(tmp_path / 'clip.avi', 20, fourcc='MJPG')
    data = clip.read_bytes()
    clip.write_bytes(data[:len(data) // 2])
    written = infer.main([str(ESPCN_X2), str(espcn_x2), '--input', str(clip), '--output', str(tmp_path / 'o')])
    read = len(_frames(written[0]))
    assert 0 < read < 20
    assert f'warning: {clip}: read {read} of the 20 frames the file announces' in capsys.readouterr().err


def test_a_corrupt_image_stops_the_run_unless_skip_bad(tmp_path, espcn_x2, capsys):
    folder = tmp_path / 'in'
    write_rgb(folder / 'a.png', _gradient(8, 8))
    (folder / 'b.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    write_rgb(folder / 'c.png', _gradient(8, 8, 50))
    tool = [str(ESPCN_X2), str(espcn_x2), '--input', str(folder), '--output', str(tmp_path / 'o')]
    code, _, err = _cli(tool, capsys)
    assert code == 2 and err.strip().splitlines()[-1].startswith(f'error: cannot decode image {folder / "b.png"}')
    written = infer.main(tool + ['--skip-bad'])
    captured = capsys.readouterr()
    assert sorted(Path(p).name for p in written) == ['a.png', 'c.png']
    assert f'warning: skipped {folder / "b.png"}: cannot decode image' in captured.err
    assert '2 image(s) -> ' in captured.out and '(1 unreadable skipped)' in captured.out
