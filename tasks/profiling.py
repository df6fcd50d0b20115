"""Measuring models: parameter counts, multiply-adds and batch-1 latency (tools/benchmark.py, benchmarks/).

MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products;
MACs = FLOPs / 2). Latency is wall time per call after untimed warm-up calls, with the CPU time of this process
beside it (what one core spends, less disturbed by other jobs than wall time).
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence

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
