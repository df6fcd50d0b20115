#!/usr/bin/env python
"""Multi-process training on CUDA: nccl, AMP, SyncBN, kill and resume, gathered evaluation.

The GPU counterpart of tests/tools/test_ddp.py (which runs the same on CPU with gloo). With N = min(2, GPUs):

1. ``torchrun --nproc_per_node=N tools/train.py <tiny ESPCN config> --launcher pytorch --amp --sync-bn`` (backend
   chosen automatically: nccl), stopped with SIGKILL before epoch 3 and resumed with ``--resume``;
2. checks: disjoint shards per rank covering the epoch, identical weights on every rank, AMP active (the
   checkpoint's optimizer holds the loss scaler), random generators of every rank in the checkpoint, and the
   validation metric of the DDP run equal to ``tools/test.py`` in one process on the final checkpoint;
3. SyncBN: ``torch.nn.SyncBatchNorm`` under nccl with a different batch on each rank gives the running mean of
   the union of the batches (needs 2 GPUs to test synchronisation; with 1 GPU it reports that).

Exit status: 0 every check passed, 1 a check failed, 3 skipped ("skipped: no CUDA device").

    python benchmarks/ddp_gpu_check.py [--keep DIR] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
# the repository's packages, not this folder's scripts (benchmarks/backbone_latency.py would shadow the backbones package)
sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))
PROBE_DIR = REPO / 'tests' / 'tools'
SKIPPED = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict:
    return dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='4',
                PYTHONPATH=os.pathsep.join([str(PROBE_DIR), str(REPO), os.environ.get('PYTHONPATH', '')]), **extra)


def _torchrun(nproc: int, *args: str) -> list:
    return [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
            f'--master_port={_free_port()}', *args]


def syncbn_worker() -> None:
    """Run under torchrun: each rank normalises its own batch; the running mean must be that of all batches."""
    import torch.distributed as dist
    local_rank = int(os.environ['LOCAL_RANK'])
    torch.cuda.set_device(local_rank)
    dist.init_process_group('nccl')
    rank, world = dist.get_rank(), dist.get_world_size()
    bn = torch.nn.SyncBatchNorm.convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(4, momentum=1.0)))
    bn = torch.nn.parallel.DistributedDataParallel(bn.cuda(), device_ids=[local_rank])
    generator = torch.Generator().manual_seed(rank)
    x = (torch.randn(3, 4, 5, 5, generator=generator) + 2.0 * rank).cuda()
    bn(x)
    everything = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(everything, x)
    expected = torch.cat(everything).mean(dim=(0, 2, 3))
    got = bn.module[0].running_mean
    error = (got - expected).abs().max().item()
    if rank == 0:
        print(json.dumps(dict(syncbn_world_size=world, syncbn_max_error=error)), flush=True)
    dist.destroy_process_group()
    sys.exit(0 if error < 1e-4 else 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--keep', help='work folder to keep (default: a temporary folder, removed)')
    parser.add_argument('--json', action='store_true', help='print the results as one JSON object')
    parser.add_argument('--syncbn-worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--cpu-plumbing', action='store_true',
                        help='developer check of this script without a GPU: 2 CPU processes (gloo), no AMP/SyncBN')
    args = parser.parse_args(argv)
    if args.syncbn_worker:
        syncbn_worker()
    cpu = args.cpu_plumbing
    if not cpu and not torch.cuda.is_available():
        print('skipped: no CUDA device (this check needs at least one GPU; tests/tools/test_ddp.py covers CPU)')
        return SKIPPED
    sys.path.insert(0, str(PROBE_DIR))
    from ddp_probe import tiny_espcn_config

    nproc = 2 if cpu else min(2, torch.cuda.device_count())
    folder = Path(args.keep or tempfile.mkdtemp(prefix='ddp_gpu_check_'))
    folder.mkdir(parents=True, exist_ok=True)
    epochs, samples = 4, 96
    config = tiny_espcn_config(REPO, folder, epochs, num_samples=samples)
    work = folder / 'run'
    shutil.rmtree(work, ignore_errors=True)  # a fresh run, also in a kept folder
    train = [str(REPO / 'tools' / 'train.py'), config, '--work-dir', str(work), '--launcher', 'pytorch']
    train += ['--threads', '1'] if cpu else ['--amp', '--sync-bn']
    results: dict = dict(gpus=torch.cuda.device_count(), processes=nproc,
                         device='cpu (plumbing check)' if cpu else torch.cuda.get_device_name(0))
    failures = []

    def check(name: str, ok: bool, detail=None) -> None:
        results[name] = detail if detail is not None else ok
        if not ok:
            failures.append(name)

    # 1. train, killed (whole process group) before epoch 3, then resumed
    proc = subprocess.Popen(_torchrun(nproc, *train), cwd=REPO, env=_env(PROBE_PAUSE_AT_EPOCH='2'),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log = []
    try:
        for line in proc.stdout:
            log.append(line)
            if 'probe: paused' in line:
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    check('killed_after_epoch_2', (work / 'epoch_2.pth').exists() and not (work / f'epoch_{epochs}.pth').exists())
    if failures:
        print(''.join(log[-40:]))
    resumed = subprocess.run(_torchrun(nproc, *train, '--resume'), cwd=REPO, env=_env(), capture_output=True,
                             text=True, timeout=900)
    check('resumed_run_exit_status', resumed.returncode == 0, resumed.returncode)
    if resumed.returncode != 0:
        print((resumed.stdout + resumed.stderr)[-4000:])
    else:
        from backbones.checkpoint_io import safe_load
        final = safe_load(str(work / f'epoch_{epochs}.pth'))
        check('final_epoch', final['meta']['epoch'] == epochs, final['meta']['epoch'])
        if not cpu:
            check('amp_loss_scaler_in_checkpoint', 'loss_scaler' in final.get('optimizer', {}))
        check('rng_state_of_every_rank', final.get('rng_state', {}).get('world_size') == nproc)
        probe = work / 'probe'
        disjoint = True
        for epoch in range(epochs):
            shards = [json.loads((probe / f'shard_rank{r}_epoch{epoch}.json').read_text()) for r in range(nproc)]
            union = sorted(i for shard in shards for i in shard)
            disjoint &= union == list(range(samples))
        check('disjoint_shards_cover_each_epoch', disjoint)
        weights = [torch.load(probe / f'weights_rank{r}.pt') for r in range(nproc)]
        check('identical_weights_on_every_rank',
              all(torch.equal(weights[0][k], w[k]) for w in weights[1:] for k in weights[0]))
        ddp_metrics = json.loads((probe / f'val_rank0_epoch{epochs}.json').read_text())
        out = folder / 'single.json'
        single = subprocess.run([sys.executable, str(REPO / 'tools' / 'test.py'), config,
                                 str(work / f'epoch_{epochs}.pth'), '--out', str(out)], cwd=REPO, env=_env(),
                                capture_output=True, text=True, timeout=600)
        if single.returncode != 0:
            check('single_process_test', False, (single.stdout + single.stderr)[-2000:])
        else:
            single_metrics = json.loads(out.read_text())
            difference = abs(ddp_metrics['sr/PSNR'] - single_metrics['sr/PSNR'])
            check('val_psnr_ddp_equals_single_process', difference < 1e-4,
                  dict(ddp=ddp_metrics['sr/PSNR'], single=single_metrics['sr/PSNR'], abs_difference=difference))

    # 2. SyncBN synchronisation
    syncbn = None if cpu else subprocess.run(
        _torchrun(nproc, str(Path(__file__).resolve()), '--syncbn-worker'), cwd=REPO, env=_env(),
        capture_output=True, text=True, timeout=300)
    if syncbn is not None:
        lines = [ln for ln in syncbn.stdout.splitlines() if ln.startswith('{"syncbn')]
        detail = json.loads(lines[-1]) if lines else (syncbn.stdout + syncbn.stderr)[-2000:]
        check('syncbn_running_mean_over_all_ranks', syncbn.returncode == 0, detail)
    if nproc < 2:
        results['note'] = 'one GPU: DDP, SyncBN synchronisation and shard checks ran with a single process'

    print(json.dumps(results, indent=None if args.json else 2))
    print('FAILED: ' + ', '.join(failures) if failures else 'all checks passed')
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failures else 0


if __name__ == '__main__':
    from tasks.cli import run_cli
    run_cli(lambda: sys.exit(main()))  # its exit status: 0 passed, 1 failed, 3 skipped
