"""Measuring models: parameter counts, multiply-adds and batch-1 latency (tools/benchmark.py, benchmarks/).

MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products;
MACs = FLOPs / 2). Latency is wall time per call after untimed warm-up calls, with the CPU time of this process
beside it (what one core spends, less disturbed by other jobs than wall time). Memory is the peak resident set
size (high-water mark, ``VmHWM``) of a fresh child process that builds the model and runs the predict path once.
"""
from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(fn: Callable[[], object]) -> int:
    """Multiply-adds of one call of ``fn`` (e.g. ``lambda: model(x, mode='tensor')``)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn()
    return counter.get_total_flops() // 2


def latency_stats(wall_ms: Sequence[float], cpu_ms: Optional[Sequence[float]] = None) -> Dict[str, float]:
    """Median, 90th percentile, mean and minimum of per-call times (ms), and frames per second at the median."""
    wall = np.asarray(wall_ms, dtype=np.float64)
    stats = dict(median_ms=float(np.median(wall)), p90_ms=float(np.percentile(wall, 90)),
                 mean_ms=float(wall.mean()), min_ms=float(wall.min()))
    stats['fps'] = 1e3 / stats['median_ms']
    if cpu_ms is not None:
        stats['cpu_ms'] = float(np.median(cpu_ms))
    return stats


def time_interleaved(fns: Dict[str, Callable[[], object]], runs: int = 50,
                     warmup: int = 5) -> Dict[str, Dict[str, float]]:
    """Time several callables in turns (the order alternates every round) so load changes hit all alike."""
    names = list(fns)
    wall: Dict[str, List[float]] = {n: [] for n in names}
    cpu: Dict[str, List[float]] = {n: [] for n in names}
    with torch.inference_mode():
        for _ in range(warmup):
            for name in names:
                fns[name]()
        for i in range(runs):
            for name in (names if i % 2 == 0 else names[::-1]):
                start, start_cpu = time.perf_counter(), time.process_time()
                fns[name]()
                wall[name].append((time.perf_counter() - start) * 1e3)
                cpu[name].append((time.process_time() - start_cpu) * 1e3)
    return {n: latency_stats(wall[n], cpu[n]) for n in names}


def time_calls(fn: Callable[[], object], runs: int = 50, warmup: int = 5) -> Dict[str, float]:
    """Latency statistics of one callable."""
    return time_interleaved({'fn': fn}, runs, warmup)['fn']


# --- memory ---------------------------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this program's own memory map. Not
    ``ru_maxrss``: the kernel carries that over ``execve``, so a child started by ``fork`` + ``exec`` (multiprocessing's
    spawn) would report at least its parent's size at the fork. Elsewhere ``getrusage(RUSAGE_SELF).ru_maxrss``
    (KiB on Linux, bytes on macOS).
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 2 ** 10  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == 'darwin' else peak / 2 ** 10


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB (``/proc/self/statm``; the peak where there is no /proc)."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def random_sample(shape: Sequence[int]) -> dict:
    """A random input of the model's input size: an RGB uint8 image for 2D models, a float volume otherwise."""
    rng = np.random.default_rng(0)
    if len(shape) == 3:
        image = rng.integers(0, 256, (shape[1], shape[2], 3), dtype=np.uint8)
    else:
        image = rng.standard_normal(tuple(shape)).astype(np.float32)
    ori_shape = tuple(image.shape[:2]) if image.ndim <= 3 else tuple(image.shape[1:])  # volumes: CxDxHxW
    return dict(img=image, meta=dict(img_id='benchmark', file=None, ori_shape=ori_shape))


def predict_path(model, pipeline: Sequence[Callable[[dict], dict]], sample: dict) -> Callable[[], Any]:
    """The whole predict path of one sample: ``pipeline`` transforms, data preprocessor, ``predict`` mode."""
    def run():
        s = dict(sample, meta=dict(sample['meta']))
        for t in pipeline:
            s = t(s)
        batch = model.data_preprocessor([s], False)
        return model(**batch, mode='predict')
    return run


def _predict_memory_child(config: str, shape: Sequence[int], threads: Optional[int], conn) -> None:
    """In the child: build the model, make the input, note the peak RSS, run the predict path once, send both."""
    try:
        if threads:
            torch.set_num_threads(threads)
        import data  # noqa: F401  (registers datasets and transforms)
        from data.datasets import build_pipeline
        from tasks import build_model, load_config
        cfg = load_config(config)
        model = build_model(cfg)
        run = predict_path(model, build_pipeline(cfg.get('infer_pipeline', [])), random_sample(shape))
        before = peak_rss_mb()
        start = time.perf_counter()
        with torch.inference_mode():
            run()
        conn.send(dict(peak_mb=peak_rss_mb(), before_predict_mb=before, seconds=time.perf_counter() - start))
    except Exception as err:  # reported by the parent as its own error
        conn.send(dict(error=f'{type(err).__name__}: {err}'))
    finally:
        conn.close()


def predict_peak_rss(config: str, shape: Sequence[int], threads: Optional[int] = None,
                     timeout: float = 3600.0) -> Dict[str, float]:
    """Peak RSS (MiB) of the predict path of ``config`` on a random input of ``shape``, measured in a fresh
    (spawned) child process by its own high-water mark (``peak_rss_mb``): ``peak_mb`` (imports, model, input and one predict call),
    ``before_predict_mb`` (the same before the call), ``predict_mb`` (their difference) and ``seconds``."""
    ctx = multiprocessing.get_context('spawn')
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_predict_memory_child, args=(os.fspath(config), tuple(shape), threads, sender))
    child.start()
    sender.close()
    try:
        report = receiver.recv() if receiver.poll(timeout) else None
    except EOFError:  # the child died without a word (e.g. killed for memory)
        report = None
    child.join(10)
    if child.is_alive():
        child.kill()
        child.join()
    if report is None:
        raise RuntimeError(f'the memory measurement of {config} at {list(shape)} did not finish (child exit code '
                           f'{child.exitcode}; -9 is a kill, e.g. out of memory)')
    if 'error' in report:
        raise RuntimeError(f'the predict path of {config} at {list(shape)} failed: {report["error"]}')
    report['predict_mb'] = report['peak_mb'] - report['before_predict_mb']
    return report
