#!/usr/bin/env python
"""Peak memory of one training step (forward + loss + backward) of the 3D U-Net with and without reversible
stages, at several volume sizes and depths (Pendse et al.: at a fixed memory budget, reversibility allows larger
volumes or deeper networks).

Each measurement runs in its own subprocess so peaks do not mix. On the CPU the peak is the child's peak resident
set size (``ru_maxrss`` from ``os.wait4``), reported whole and as the increase over the child's RSS just before
the step (model and input already built: what the step itself needs). With ``--device cuda`` the child reports
``torch.cuda.max_memory_allocated`` over the step instead. The same weights are used in both modes (the switch
only changes how autograd keeps activations).

    python benchmarks/reversible_memory.py                       # CPU, about 2-3 minutes on 2 cores
    python benchmarks/reversible_memory.py --sizes 32 64 --depths 1 2 4 --json
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[32, 48, 64], help='cubic volume sides')
    parser.add_argument('--depths', type=int, nargs='+', default=[1, 3], help='reversible blocks per level')
    parser.add_argument('--depth-size', type=int, default=48, help='volume side for the depth sweep')
    parser.add_argument('--channels', type=int, nargs='+', default=[16, 32, 64, 128], help='level widths')
    parser.add_argument('--expand-ratio', type=float, default=4.0, help='MBConv expansion ratio (default 4)')
    parser.add_argument('--threads', type=int, default=2, help='torch threads of each child (default 2)')
    parser.add_argument('--device', default='cpu', help='cpu (peak RSS) or cuda (max_memory_allocated)')
    parser.add_argument('--mmap-threshold', type=int, default=131072,
                        help="children's glibc MALLOC_MMAP_THRESHOLD_ in bytes: larger blocks are mmap'ed and given "
                             'back to the system when freed, so the peak RSS follows the live tensors (0: glibc '
                             'default, whose threshold grows and keeps freed blocks resident)')
    parser.add_argument('--json', action='store_true', help='print the table as JSON')
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--size', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--depth', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--reversible', type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def child(args: argparse.Namespace) -> None:
    """One training step; prints JSON with the memory before and at the peak."""
    sys.path.insert(0, REPO)
    import importlib.util
    import torch
    from backbones.reversible_unet3d import ReversibleUNet3dEncoder
    from heads.unet3d import UNet3dHead
    # the loss module alone (only torch): importing the tasks package would load every task and add to the RSS
    spec = importlib.util.spec_from_file_location('_losses', os.path.join(REPO, 'tasks', 'volumetric', 'losses.py'))
    losses_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(losses_module)
    region_losses = losses_module.region_losses
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    levels = len(args.channels)
    encoder = ReversibleUNet3dEncoder(4, args.channels, [args.depth] * levels, expand_ratio=args.expand_ratio,
                                      reversible=bool(args.reversible))
    head = UNet3dHead(encoder.out_channels, 3, args.depth, expand_ratio=args.expand_ratio,
                      reversible=bool(args.reversible))
    net = torch.nn.Sequential(encoder, head).to(device).train()
    def batch(s: int):
        x = torch.randn(1, 4, s, s, s, device=device)
        return x, torch.tensor([0, 1, 2, 4], device=device)[torch.randint(0, 4, (1, s, s, s), device=device)]
    # warm-up at a tiny size: thread pools and kernel caches are not part of the step's memory
    warm = 2 ** (len(args.channels) - 1)
    sum(region_losses(net(batch(warm)[0]), batch(warm)[1]).values()).backward()
    net.zero_grad(set_to_none=False)
    x, labels = batch(args.size)
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2 ** 20
    else:
        before = _rss_mb()
    start = time.perf_counter()
    losses = region_losses(net(x), labels)
    sum(losses.values()).backward()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak = _rss_mb()
    print(json.dumps(dict(before_mb=before, peak_mb=peak, seconds=time.perf_counter() - start,
                          params=sum(p.numel() for p in net.parameters()))))


def measure(args: argparse.Namespace, size: int, depth: int, reversible: bool) -> Dict[str, float]:
    cmd = [sys.executable, os.path.abspath(__file__), '--child', '--size', str(size), '--depth', str(depth),
           '--reversible', str(int(reversible)), '--threads', str(args.threads), '--device', args.device,
           '--expand-ratio', str(args.expand_ratio), '--channels', *map(str, args.channels)]
    env = dict(os.environ)
    if args.mmap_threshold:
        env['MALLOC_MMAP_THRESHOLD_'] = str(args.mmap_threshold)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # the kernel's peak RSS of exactly this child
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f'child for size {size}, depth {depth}, reversible {reversible} failed:\n{err[-2000:]}')
    record = json.loads(out.strip().splitlines()[-1])
    if args.device == 'cpu':
        record['peak_mb'] = usage.ru_maxrss / 1024.0
    record['step_mb'] = record['peak_mb'] - record['before_mb']
    return record


def run(args: argparse.Namespace) -> List[dict]:
    jobs = [(s, args.depths[0]) for s in args.sizes] + [(args.depth_size, d) for d in args.depths[1:]]
    rows = []
    for size, depth in dict.fromkeys(jobs):
        pair = {rev: measure(args, size, depth, rev) for rev in (True, False)}
        rev, plain = pair[True], pair[False]
        rows.append(dict(size=size, depth=depth, params=rev['params'],
                         rev_peak_mb=round(rev['peak_mb'], 1), plain_peak_mb=round(plain['peak_mb'], 1),
                         rev_step_mb=round(rev['step_mb'], 1), plain_step_mb=round(plain['step_mb'], 1),
                         peak_ratio=round(rev['peak_mb'] / plain['peak_mb'], 3),
                         step_ratio=round(rev['step_mb'] / max(plain['step_mb'], 1e-6), 3),
                         rev_s=round(rev['seconds'], 2), plain_s=round(plain['seconds'], 2)))
        if not args.json:
            r = rows[-1]
            print(f"{size:>4}^3 depth {depth}: reversible peak {r['rev_peak_mb']:8.1f} MB (step +{r['rev_step_mb']:7.1f})"
                  f" | plain peak {r['plain_peak_mb']:8.1f} MB (step +{r['plain_step_mb']:7.1f}) | peak ratio "
                  f"{r['peak_ratio']:.3f}, step ratio {r['step_ratio']:.3f} | time {r['rev_s']}s vs {r['plain_s']}s",
                  flush=True)
    return rows


def largest_volume_gain(rows: List[dict], depth: int) -> float:
    """Voxels that fit the plain network's step memory at the largest size, reversible over plain (linear fits of
    step memory against voxel count; the paper's "volumes up to 3x larger")."""
    import numpy as np
    sweep = [r for r in rows if r['depth'] == depth]
    if len(sweep) < 2:
        return float('nan')
    voxels = np.array([r['size'] ** 3 for r in sweep], float)
    fits = {k: np.polyfit(voxels, [r[f'{k}_step_mb'] for r in sweep], 1) for k in ('rev', 'plain')}
    budget = sweep[-1]['plain_step_mb']
    fit_voxels = {k: (budget - b) / a for k, (a, b) in fits.items()}
    return float(fit_voxels['rev'] / fit_voxels['plain'])


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    if args.child:
        child(args)
        return []
    start = time.perf_counter()
    rows = run(args)
    gain = largest_volume_gain(rows, args.depths[0])
    summary = dict(device=args.device, threads=args.threads, channels=args.channels, expand_ratio=args.expand_ratio,
                   rows=rows, volume_gain_at_budget=round(gain, 2), seconds=round(time.perf_counter() - start, 1))
    if args.json:
        print(json.dumps(summary))
    else:
        print(f'largest volume at the plain network\'s budget ({args.sizes[-1]}^3 step memory): reversible fits '
              f'{gain:.2f}x the voxels (linear fit over sizes {args.sizes}); total {summary["seconds"]} s')
    return rows


if __name__ == '__main__':
    main()
