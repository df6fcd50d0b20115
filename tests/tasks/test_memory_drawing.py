"""Bounded memory after predict (issue 13, item 8): the pictures and files tools/infer.py writes for large inputs.

SR pictures are previews of at most 2048 px a panel (the full-size image is still written), ``write_rgb`` makes no
full-size copy, the segmentation blend and the depth colour map run in bands of rows with the same numbers as the
whole-image formulas, and ``--max-pixels`` reaches the model. numpy reports its allocations to ``tracemalloc``, so
its peak is the extra memory a call needs (OpenCV's own buffers, small here, are not counted).
"""
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from data.io import read_rgb, write_rgb
from data.visualization.depth import colorize_depth, depth_panel, depth_range
from data.visualization.masks import draw_segmentation, voc_palette
from data.visualization.panels import PREVIEW_MAX_SIDE, fit_preview, label_panels, preview_size

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools'))

import infer  # noqa: E402


def traced_peak(fn):
    """``(fn(), peak bytes numpy/Python allocated during the call beyond what was held before)``."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


# --- writing ----------------------------------------------------------------------------------------------------
def test_write_rgb_makes_no_full_size_copy_and_leaves_the_array_as_it_was(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)  # 1.44 MB
    original = image.copy()
    _, peak = traced_peak(lambda: write_rgb(tmp_path / 'a.png', image))
    assert peak < image.nbytes / 4, f'{peak} bytes allocated to write a {image.nbytes}-byte image'
    np.testing.assert_array_equal(image, original)  # swapped to BGR and back
    np.testing.assert_array_equal(read_rgb(tmp_path / 'a.png'), original)  # and the file holds RGB right
    view = original[:, ::2]  # not contiguous: written through a copy, same result
    write_rgb(tmp_path / 'b.png', view)
    np.testing.assert_array_equal(read_rgb(tmp_path / 'b.png'), view)
    with pytest.raises(ValueError, match=r'c\.png: expected an HxWx3 RGB array'):
        write_rgb(tmp_path / 'c.png', original[..., 0])


def test_write_rgb_restores_the_array_when_writing_fails(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    original = image.copy()
    (tmp_path / 'x.png').mkdir()  # a folder where the file should go
    with pytest.raises(OSError, match='cannot write image'):
        write_rgb(tmp_path / 'x.png', image)
    np.testing.assert_array_equal(image, original)


# --- pictures ---------------------------------------------------------------------------------------------------
def test_preview_size_and_fit_preview():
    assert preview_size((9000, 12000, 3)) == (1536, 2048) and preview_size((12000, 9000)) == (2048, 1536)
    assert preview_size((2048, 100)) == (2048, 100) and preview_size((30, 40), 4) == (3, 4)
    small = np.zeros((20, 30, 3), np.uint8)
    assert fit_preview(small) is small
    big = np.zeros((40, 60, 3), np.uint8)
    big[:, 30:] = 200
    shrunk = fit_preview(big, 30)
    assert shrunk.shape == (20, 30, 3) and (shrunk[:, :15] == 0).all() and (shrunk[:, 15:] == 200).all()


def test_label_panels_lays_images_out_in_one_picture():
    a = np.full((100, 120, 3), 10, np.uint8)
    b = np.full((80, 90), 20, np.uint8)  # gray, shorter
    out = label_panels([a, b], ['a', 'b'], gap=3)
    assert out.shape == (100, 120 + 3 + 90, 3)
    assert (out[:, 120:123] == 255).all()  # the gap
    assert (out[50:, :120] == 10).all() and (out[50:80, 123:] == 20).all() and (out[80:, 123:] == 0).all()
    assert (out[:20, :40] != 10).any() and (out[:20, 123:163] != 20).any()  # each panel has its label
    with pytest.raises(ValueError, match='one label per image'):
        label_panels([a, b], ['a'])


def test_sr_picture_is_a_preview_of_at_most_2048_px_a_panel():
    from tasks.super_resolution import SuperResolver
    model = SuperResolver(backbone=dict(type='ESPCNFeatures', channels=(8, 4)), head=dict(type='SubPixelHead'),
                          scale=3)
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    sr = np.ascontiguousarray(np.repeat(np.repeat(lr, 3, 0), 3, 1))  # a stand-in 4500 x 6000 output (81 MB)
    picture, peak = traced_peak(lambda: model.visualize(lr, dict(image=sr)))
    h, w = preview_size(sr.shape)
    assert (h, w) == (1536, PREVIEW_MAX_SIDE) and picture.shape == (h, 2 * w + 4, 3)
    panel = fit_preview(sr)
    np.testing.assert_array_equal(picture[200:, w + 4 + 400:], panel[200:, 400:])  # the SR panel (past its label)
    # the picture, the two preview panels and PIL's bytes; the full-size picture took 5 x the result (405 MB)
    assert peak < sr.nbytes / 2, f'{peak} bytes for a {picture.nbytes}-byte picture of an {sr.nbytes}-byte result'
    small = sr[:300, :400]  # fits: shown as it is, beside the bicubic up-scaling at its size
    assert model.visualize(lr[:100, :134], dict(image=np.ascontiguousarray(small))).shape == (300, 804, 3)


def test_segmentation_blend_in_bands_equals_the_whole_image_formula():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (61, 77, 3), dtype=np.uint8)
    seg = rng.integers(0, 5, (61, 77)).astype(np.int64)
    seg[:5] = 255  # ignored
    palette = voc_palette(5)
    out = draw_segmentation(image, seg, palette, ['a'] * 5, alpha=0.3, legend=False, band_pixels=77 * 7)
    colors = np.asarray(palette, np.float32)[np.where(seg == 255, 0, seg)]
    ref = image.astype(np.float32)
    painted = (seg != 0) & (seg != 255)
    ref[painted] = 0.7 * ref[painted] + 0.3 * colors[painted]
    np.testing.assert_array_equal(out, np.clip(np.round(ref), 0, 255).astype(np.uint8))
    assert (out[:5] == image[:5]).all() and (out[seg == 0] == image[seg == 0]).all()
    # one band or many: the same picture, legend included
    np.testing.assert_array_equal(draw_segmentation(image, seg, palette, ['a'] * 5, band_pixels=77 * 3),
                                  draw_segmentation(image, seg, palette, ['a'] * 5, band_pixels=1 << 30))


def test_segmentation_picture_needs_little_more_than_itself():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    seg = np.kron(rng.integers(0, 21, (6, 8)), np.ones((100, 100), np.int64))
    out, peak = traced_peak(lambda: draw_segmentation(image, seg, voc_palette(21), [str(i) for i in range(21)],
                                                      band_pixels=800 * 8))
    # the whole-image float blend held 3 float32 copies of the image (12 x the picture)
    assert peak < 1.5 * out.nbytes, f'{peak} bytes for a {out.nbytes}-byte picture'


def test_depth_colours_in_bands_equal_the_whole_map_formula():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 8.0, (45, 70)).astype(np.float32)
    depth[0, :10] = 0
    depth[1, :3] = np.nan
    near, far = depth_range(depth)
    valid = depth[np.isfinite(depth) & (depth > 0)]
    assert (near, far) == pytest.approx(tuple(np.percentile(valid, [2, 98])))
    closeness = np.clip((far - depth) / (far - near), 0.0, 1.0)
    ref = cv2.cvtColor(cv2.applyColorMap(np.round(np.nan_to_num(closeness) * 255).astype(np.uint8),
                                         cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    ref[~(np.isfinite(depth) & (depth > 0))] = 0
    np.testing.assert_array_equal(colorize_depth(depth, band_pixels=70 * 4), ref)
    # large maps: the range from a regular grid sample, close to the whole map's
    big = np.kron(depth, np.ones((8, 8), np.float32))
    sampled = depth_range(big, max_samples=big.size // 16)
    assert sampled == pytest.approx(depth_range(big, max_samples=big.size), rel=0.05)
    colours, peak = traced_peak(lambda: colorize_depth(big, near, far, band_pixels=big.shape[1] * 8))
    np.testing.assert_array_equal(colours, np.kron(ref, np.ones((8, 8, 1), np.uint8)))
    # the whole-map formula held five float32 maps (7 x the picture)
    assert peak < 1.5 * colours.nbytes, f'{peak} bytes for a {colours.nbytes}-byte picture'
    image = np.zeros(big.shape + (3,), np.uint8)
    np.testing.assert_array_equal(depth_panel(image, big, near, far),
                                  label_panels([image, colours], ['input', f'depth {near:.1f}-{far:.1f} m (near red)']))


# --- tools/infer.py -----------------------------------------------------------------------------------------------
TINY_SEGMENTOR = """model = dict(type='Segmentor', num_classes=3,
             backbone=dict(type='MobileNetV2', width_mult=0.25, out_indices=(-2,), output_stride=16),
             neck=dict(type='ASPP', channels=16), head=dict(type='DeepLabHead'))
"""


def test_infer_max_pixels_reaches_the_model(tmp_path, monkeypatch, capsys):
    from tasks import build_model
    from tasks.segmentation import Segmentor
    config = tmp_path / 'tiny_seg.py'
    config.write_text(TINY_SEGMENTOR)
    torch.manual_seed(0)
    model = build_model(str(config))
    checkpoint = tmp_path / 'tiny_seg.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    write_rgb(tmp_path / 'photo.png', np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8))
    seen, limits = [], []
    inference = Segmentor.inference

    def spy(self, inputs):
        seen.append(tuple(inputs.shape[-2:]))
        limits.append(self.max_pixels)
        return inference(self, inputs)
    monkeypatch.setattr(Segmentor, 'inference', spy)
    base = [str(config), str(checkpoint), '--input', str(tmp_path / 'photo.png'), '--save-raw']
    infer.main(base + ['--output', str(tmp_path / 'default')])
    infer.main(base + ['--output', str(tmp_path / 'capped'), '--max-pixels', '1200'])
    infer.main(base + ['--output', str(tmp_path / 'free'), '--max-pixels', '0'])
    assert seen == [(60, 80), (30, 40), (60, 80)]  # 1200 pixels: 30 x 40, same aspect
    assert limits == [2048 * 1024, 1200, None]
    from data.visualization.masks import read_label_png
    labels = read_label_png(str(tmp_path / 'capped' / 'labels' / 'photo.png'))
    assert labels.shape == (60, 80)  # results at the input's size all the same
    with pytest.raises(SystemExit):
        infer.parse_args(base + ['--output', str(tmp_path / 'x'), '--max-pixels', '-1'])
    assert '--max-pixels must be a number of pixels >= 0 (0 = no limit), got -1' in capsys.readouterr().err
    with pytest.raises(ValueError, match='SuperResolver has no max_pixels'):
        infer.main([str(REPO / 'configs' / 'espcn_x3_500e_t91.py'), str(REPO / 'checkpoints' / 'espcn_x3_t91.pth'),
                    '--input', str(tmp_path / 'photo.png'), '--output', str(tmp_path / 'sr'), '--max-pixels', '9'])


CHILD = """
import json, resource, sys
import torch.nn.functional as F
sys.path.insert(0, {tools!r})
import infer
from tasks.super_resolution import SuperResolver
# the network as nearest up-scaling: what is measured is the rest of the path (tiles, colour, picture, files)
SuperResolver._forward = lambda self, x: F.pixel_shuffle(x.repeat(1, self.scale ** 2, 1, 1), self.scale)
infer.main({warmup!r})  # builds the model, loads the weights, warms the allocator
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
written = infer.main({argv!r})
print(json.dumps(dict(written=written, before=before, peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


@pytest.mark.slow
def test_infer_on_a_large_sr_input_stays_bounded(tmp_path):
    """ESPCN x3 through tools/infer.py on a 900 x 1200 photo (a 2700 x 3600 output, 29 MB) in a child process:
    the peak RSS it adds over a run on a small image.

    Predict needs the output and its float luma (39 MB), the preview picture 19 MB, the files no copy: 127 MiB
    measured. The full-size side-by-side picture (a bicubic panel, three copies of the 58 MB picture, its BGR
    copy) added 241 MiB.
    """
    photo = cv2.resize(read_rgb(REPO / 'tests' / 'assets' / 'images' / 'bus_lr_x3.png'), (1200, 900),
                       interpolation=cv2.INTER_CUBIC)
    write_rgb(tmp_path / 'photo.png', photo)
    write_rgb(tmp_path / 'small.png', np.ascontiguousarray(photo[:40, :40]))
    tool = [str(REPO / 'configs' / 'espcn_x3_500e_t91.py'), str(REPO / 'checkpoints' / 'espcn_x3_t91.pth'),
            '--threads', '1', '--input']
    out = tmp_path / 'out'
    script = CHILD.format(tools=str(REPO / 'tools'), warmup=tool + [str(tmp_path / 'small.png'), '--output',
                                                                    str(tmp_path / 'warm')],
                          argv=tool + [str(tmp_path / 'photo.png'), '--output', str(out)])
    child = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, cwd=str(tmp_path),
                           env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert sorted(report['written']) == sorted([str(out / 'photo.png'), str(out / 'raw' / 'photo.png')])
    assert cv2.imread(str(out / 'raw' / 'photo.png')).shape == (2700, 3600, 3)  # the full-size result
    assert cv2.imread(str(out / 'photo.png')).shape == (1536, 2 * 2048 + 4, 3)  # the preview
    assert 'the picture is a preview (4100x1536); the full-size 3600x2700 result' in child.stdout
    added = report['peak'] - report['before']
    assert added < 175, f'tools/infer.py added {added:.0f} MiB on a 900 x 1200 input'
