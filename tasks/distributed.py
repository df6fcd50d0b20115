"""Training and testing beyond one process: torchrun / SLURM launch, DDP on CPU (gloo) and GPU (nccl), SyncBN.

mmengine 0.10.7's Runner initialises the process group itself, but calls ``torch.cuda.set_device`` (fails without
an NVIDIA driver) and wraps the model in DDP with ``device_ids=[LOCAL_RANK]`` (rejected for a CPU model). We
initialise the process group before the Runner (the Runner then skips its own set-up), choose the backend from the
device (nccl with CUDA, gloo otherwise), and on CPU wrap with ``device_ids=None``.

Launch (see docs/training.md):
    python -m torch.distributed.run --nproc_per_node=N tools/train.py CONFIG --launcher pytorch
    srun -N 2 --ntasks-per-node=8 --gpus-per-node=8 python tools/train.py CONFIG --launcher slurm
"""
from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from typing import Any, Dict, Mapping, MutableMapping, Optional, Tuple

import torch
import torch.distributed as dist

__all__ = ['LAUNCHERS', 'default_backend', 'slurm_environment', 'init_distributed', 'configure_distributed',
           'check_eval_samplers', 'broadcast_object', 'is_main_process', 'shutdown_distributed']

LAUNCHERS = ('none', 'pytorch', 'slurm')
TORCHRUN_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


def default_backend() -> str:
    """nccl where CUDA is available, gloo on CPU."""
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def _first_slurm_host(nodelist: str) -> str:
    scontrol = shutil.which('scontrol')
    if scontrol is None:
        raise RuntimeError(f'--launcher slurm: MASTER_ADDR is not set and scontrol is not on PATH to expand '
                           f'SLURM_NODELIST={nodelist!r}; export MASTER_ADDR=<first node>')
    out = subprocess.run([scontrol, 'show', 'hostnames', nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def slurm_environment(env: Mapping[str, str]) -> Dict[str, str]:
    """torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) from SLURM's (one task per
    process: ``srun --ntasks-per-node=<GPUs per node>``)."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID') if k not in env]
    if missing:
        raise RuntimeError(f'--launcher slurm: {", ".join(missing)} not set; start the tasks with srun')
    return dict(RANK=env['SLURM_PROCID'], WORLD_SIZE=env['SLURM_NTASKS'], LOCAL_RANK=env['SLURM_LOCALID'],
                MASTER_ADDR=env.get('MASTER_ADDR') or _first_slurm_host(env.get('SLURM_NODELIST', '')),
                MASTER_PORT=env.get('MASTER_PORT', '29500'))


def init_distributed(launcher: str, backend: Optional[str] = None,
                     timeout_s: Optional[float] = None) -> Tuple[int, int]:
    """Initialise the default process group for ``launcher``; return ``(rank, world_size)``.

    ``none`` does nothing (one process). ``pytorch`` reads the variables torchrun sets; ``slurm`` derives them
    from SLURM's. With nccl each process takes the GPU ``LOCAL_RANK``.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'unknown launcher {launcher!r}; choose one of {", ".join(LAUNCHERS)}')
    if launcher == 'none':
        return 0, 1
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if launcher == 'slurm':
        os.environ.update(slurm_environment(os.environ))
    missing = [k for k in TORCHRUN_VARIABLES if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher {launcher}: {", ".join(missing)} not set; start with '
                           f'"python -m torch.distributed.run --nproc_per_node=N tools/train.py CONFIG '
                           f'--launcher pytorch" (or srun with --launcher slurm)')
    backend = backend or default_backend()
    if backend == 'nccl':
        if not torch.cuda.is_available():
            raise RuntimeError('the nccl backend needs CUDA GPUs; on CPU use --dist-backend gloo')
        torch.cuda.set_device(int(os.environ['LOCAL_RANK']) % torch.cuda.device_count())
    kwargs: Dict[str, Any] = {}
    if timeout_s:
        kwargs['timeout'] = timedelta(seconds=float(timeout_s))
    dist.init_process_group(backend=backend, **kwargs)
    return dist.get_rank(), dist.get_world_size()


def configure_distributed(cfg: MutableMapping, launcher: str, backend: str, sync_bn: bool = False) -> None:
    """Set the Runner's side of a distributed run in ``cfg``.

    - ``launcher`` and ``env_cfg.dist_cfg.backend`` (what the process group was initialised with);
    - on CPU, DDP without ``device_ids`` (mmengine would pass ``[LOCAL_RANK]``), buffers not broadcast and
      ``find_unused_parameters`` from the config, as mmengine's own default wrapper;
    - ``randomness.diff_rank_seed=True`` unless the config says otherwise: each rank's main-process augmentations
      differ (the sampler's seed is still shared, and DDP copies rank 0's initial weights to every rank);
    - ``sync_bn``: BatchNorm statistics over the whole batch of all ranks (GPU only).
    """
    distributed = launcher != 'none'
    if sync_bn:
        if not distributed:
            raise ValueError('--sync-bn needs several processes (--launcher pytorch or slurm)')
        if not torch.cuda.is_available():
            raise ValueError('--sync-bn needs CUDA: torch.nn.SyncBatchNorm runs only on GPUs')
        cfg['sync_bn'] = 'torch'
    cfg['launcher'] = launcher
    env_cfg = dict(cfg.get('env_cfg') or {})
    env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg') or {}, backend=backend)
    cfg['env_cfg'] = env_cfg
    if not distributed:
        return
    randomness = dict(cfg.get('randomness') or {})
    randomness.setdefault('diff_rank_seed', True)
    cfg['randomness'] = randomness
    if not torch.cuda.is_available():
        wrapper = dict(cfg.get('model_wrapper_cfg') or {})
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        wrapper['device_ids'] = None
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', bool(cfg.get('find_unused_parameters', False)))
        cfg['model_wrapper_cfg'] = wrapper


def check_eval_samplers(cfg: Mapping, keys=('val_dataloader', 'test_dataloader')) -> None:
    """Evaluation under DDP must see every sample once after gathering.

    mmengine's ``DefaultSampler`` (``round_up=True``) pads the last shard with samples from the start, and
    ``BaseMetric.evaluate`` interleaves the ranks' results and cuts them to the dataset's length, which drops
    exactly the padding; this holds because every metric of ours appends one result per sample. With
    ``round_up=False`` the shards differ in length and the interleaving would drop real samples.
    """
    for key in keys:
        loader = cfg.get(key)
        sampler = (loader or {}).get('sampler') or {}
        if sampler.get('type', 'DefaultSampler') in ('DefaultSampler', 'mmengine.DefaultSampler') \
                and sampler.get('round_up', True) is False:
            raise ValueError(f'{key}.sampler has round_up=False: under several processes the gathered '
                             f'results would miss samples; use round_up=True (the default)')


def shutdown_distributed() -> None:
    """Destroy the default process group, if one was created, after every rank has reached this point: a rank
    that tears its group down while another still talks to it can abort in gloo's threads."""
    if dist.is_available() and dist.is_initialized():
        if dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


def is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (unchanged in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
