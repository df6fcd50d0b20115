"""Memory stays bounded: a long video holds flat RSS through tools/infer.py; the benchmark's --memory report."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.profiling import current_rss_mb, peak_rss_mb
from tests.segmentation.seg_testutils import load_tool
from tests.tools.test_infer_outputs import _clip as write_clip

REPO = Path(__file__).resolve().parents[2]


def test_rss_helpers_measure_this_process():
    import mmap
    before = current_rss_mb()
    # 64 MiB of fresh anonymous pages, touched: np.ones could be served from heap pages an earlier test left
    # resident (then RSS would not grow), a new mapping cannot
    block = mmap.mmap(-1, 64 * 2 ** 20)
    np.frombuffer(block, np.uint8)[:] = 1
    assert current_rss_mb() - before > 50 and peak_rss_mb() >= current_rss_mb() - 1
    block.close()


@pytest.mark.slow
def test_video_inference_holds_flat_memory(tmp_path, monkeypatch):
    from tasks.super_resolution import SuperResolver
    clip = tmp_path / 'clip.mp4'
    write_clip(clip, 300, size=(64, 48), fps=25.0)  # a moving gradient, so frames differ
    rss = []
    predict = SuperResolver.predict

    def recording_predict(self, inputs, data_samples):
        results = predict(self, inputs, data_samples)
        rss.append(current_rss_mb())
        return results
    monkeypatch.setattr(SuperResolver, 'predict', recording_predict)
    infer = load_tool('infer')
    infer.main([str(REPO / 'configs' / 'espcn_x2_500e_t91.py'), str(REPO / 'checkpoints' / 'espcn_x2_t91.pth'),
                '--input', str(clip), '--output', str(tmp_path / 'out'), '--threads', '1'])
    assert len(rss) == 300
    assert abs(rss[299] - rss[49]) < 50, f'RSS after frame 50: {rss[49]:.0f} MiB, after frame 300: {rss[299]:.0f} MiB'
    written = cv2.VideoCapture(str(next((tmp_path / 'out').glob('*.mp4'))))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 300


@pytest.mark.slow
def test_benchmark_memory_reports_a_bounded_predict_path(capsys):
    """Peak RSS of ESPCN x3's predict path on a 600 x 800 input, in a spawned child (tools/benchmark.py --memory).

    The whole-image path needs the 64 + 32 + 9 float32 maps of 600 x 800 at once (192 MiB; 387 MiB measured with
    ``test_cfg=dict(tile=0)``); 256-pixel tiles need the 12 MiB output, its float luma and one tile's working set
    (130 MiB measured)."""
    benchmark = load_tool('benchmark')
    report = benchmark.main([str(REPO / 'configs' / 'espcn_x3_500e_t91.py'), '--memory', '--threads', '1',
                             '--shape', '3', '600', '800', '--json'])
    assert json.loads(capsys.readouterr().out) == report and report['input_shape'] == [1, 3, 600, 800]
    m = report['memory']
    assert 0 < m['before_predict_mb'] <= m['peak_mb'] and m['predict_mb'] == m['peak_mb'] - m['before_predict_mb']
    assert 12 < m['predict_mb'] < 192, m
