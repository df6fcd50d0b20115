"""Exact resume: every random number generator of a training run goes into its checkpoints and comes back.

A run killed after epoch k and resumed must draw the same random numbers as a run that was never stopped:
the same crops and flips (``np.random`` / ``random`` in the transforms), the same shuffling (the sampler's seed
and epoch), the same dropout and dataloader worker seeds (torch's CPU and CUDA generators). mmengine 0.10.7
saves only the seed and re-seeds everything from it on resume, so a resumed run replays epoch 1's augmentations.

- ``capture_rng_state`` / ``restore_rng_state``: the generators of this process as tensors and plain containers
  (loadable with ``torch.load(weights_only=True)`` and the allow-list of backbones/checkpoint_io.py).
- ``seed_worker``: a dataloader ``worker_init_fn`` whose seeds change every epoch (derived from the per-epoch
  seed torch gives each worker, which comes from the restored main generator) and differ between ranks.
  mmengine's default seeds each worker with ``seed + worker_id`` every epoch: identical augmentations each epoch.
- ``RNGStateHook``: stores the generators of every rank in each checkpoint, restores them where the resumed loop
  continues, and keeps validation from consuming the training run's random numbers (so where validation runs
  does not change the training, and a resumed run, which skips the validation before its checkpoint, stays equal).
  Restoring needs the same number of processes as the run that wrote the checkpoint, and dataloader workers that
  are restarted every epoch (``num_workers=0`` or ``persistent_workers=False``): persistent workers keep their
  generators in their own processes.
"""
from __future__ import annotations

import logging
import os
import random
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS

from .registry import HOOKS

__all__ = ['capture_rng_state', 'restore_rng_state', 'seed_worker', 'RNGStateHook', 'SEED_WORKER']

SEED_WORKER = 'mobilevision_seed_worker'  # registry name for configs: worker_init_fn=dict(type=SEED_WORKER)


def capture_rng_state() -> Dict[str, Any]:
    """This process's generators (torch CPU, CUDA when initialised, numpy, python) in plain forms."""
    np_state = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: Dict[str, Any] = dict(
        torch=torch.get_rng_state(),
        numpy=dict(kind=str(np_state[0]), keys=torch.from_numpy(np_state[1].astype(np.int64)),
                   pos=int(np_state[2]), has_gauss=int(np_state[3]), cached_gaussian=float(np_state[4])),
        python=dict(version=int(version), internal=torch.tensor(internal, dtype=torch.int64),
                    gauss_next=gauss_next))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set this process's generators from ``capture_rng_state``'s output."""
    torch.set_rng_state(state['torch'].cpu())
    np_state = state['numpy']
    np.random.set_state((np_state['kind'], np_state['keys'].cpu().numpy().astype(np.uint32), np_state['pos'],
                         np_state['has_gauss'], np_state['cached_gaussian']))
    py = state['python']
    random.setstate((py['version'], tuple(int(v) for v in py['internal'].cpu().tolist()), py['gauss_next']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


def _current_rank() -> int:
    """The rank in a dataloader worker: forked workers see the process group, spawned ones torchrun's RANK."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get('RANK', 0))


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy, python and torch in a worker from torch's per-epoch worker seed and the rank.

    torch gives worker ``i`` the seed ``base + i``, where ``base`` is drawn from the main process's generator when
    the epoch's iterator starts: it changes every epoch and is reproduced on resume (the main generator is
    restored). Mixing in the rank keeps ranks, whose main generators share the seed, from augmenting alike.
    """
    info = torch.utils.data.get_worker_info()
    base = info.seed if info is not None else torch.initial_seed()
    seq = np.random.SeedSequence([base & 0xFFFFFFFF, base >> 32, worker_id, _current_rank()])
    words = seq.generate_state(4, dtype=np.uint32)
    np.random.seed(words)
    random.seed(int(words[0]) << 32 | int(words[1]))
    torch.manual_seed(int(words[2]) << 32 | int(words[3]))


if SEED_WORKER not in MMENGINE_FUNCTIONS.module_dict:
    MMENGINE_FUNCTIONS.register_module(name=SEED_WORKER, module=seed_worker)


def _sampler_of(dataloader) -> Optional[Any]:
    sampler = getattr(dataloader, 'sampler', None)
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    if not hasattr(sampler, 'seed') and batch_sampler is not None:
        sampler = getattr(batch_sampler, 'sampler', sampler)
    return sampler


class _RestoreBeforeNext:
    """Iterator wrapper that calls ``action`` once, just before the ``after + 1``-th item is drawn.

    An iteration-based loop resumed at iteration N first replays N batches to advance its data iterator; the
    generators must be restored after that replay, right before batch N + 1.
    """

    def __init__(self, iterator, after: int, action: Callable[[], None]) -> None:
        self._iterator, self._left, self._action = iterator, after, action

    def __iter__(self):
        return self

    def __next__(self):
        if self._left == 0 and self._action is not None:
            self._action()
            self._action = None
        self._left -= 1
        return next(self._iterator)

    def __getattr__(self, name: str):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save every rank's random generators and the sampler's seed in checkpoints; restore them on resume.

    mmengine saves checkpoints on rank 0 only (``Runner.save_checkpoint`` is ``master_only``), so the ranks'
    generators are gathered just before, at each point where the ``CheckpointHook`` is due to save (priority
    ``LOW``: after the other hooks of that stage, before the ``CheckpointHook``), and at the start of each
    validation (a best-model checkpoint is saved during validation). Validation runs between ``before_val`` and
    ``after_val`` on a copy of the generators.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._pending: Optional[Dict[str, Any]] = None
        self._outside_val: Optional[Dict[str, Any]] = None
        self._val_ranks: Optional[List[Dict[str, Any]]] = None
        self._gathered: Optional[List[Dict[str, Any]]] = None
        self._gathered_at: Optional[tuple] = None

    # saving -------------------------------------------------------------------------------------------------
    @staticmethod
    def _checkpoint_due(runner, by_epoch: bool) -> bool:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and hook.by_epoch == by_epoch:
                if by_epoch:
                    return bool(hook.every_n_epochs(runner, hook.interval, hook.save_begin)
                                or (hook.save_last and hook.is_last_train_epoch(runner)))
                return bool(hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
                            or (hook.save_last and hook.is_last_train_iter(runner)))
        return False

    @staticmethod
    def _all_ranks(own: Dict[str, Any]) -> List[Dict[str, Any]]:
        return all_gather_object(own) if get_world_size() > 1 else [own]

    def _gather(self, runner) -> None:
        self._gathered = self._all_ranks(capture_rng_state())
        self._gathered_at = (runner.epoch, runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._checkpoint_due(runner, by_epoch=False):
            self._gather(runner)

    def after_train_epoch(self, runner) -> None:
        if self._checkpoint_due(runner, by_epoch=True):
            self._gather(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """(rank 0 only) Store the gathered generators; inside validation (a best-model checkpoint), those of
        the training run, not validation's."""
        if self._val_ranks is not None:
            ranks = self._val_ranks
        elif self._gathered is not None and self._gathered_at == (runner.epoch, runner.iter):
            ranks = self._gathered
        elif get_world_size() == 1:
            ranks = [capture_rng_state()]
        else:
            print_log('checkpoint saved at a point where the ranks\' random generators were not gathered: '
                      'it holds none, and resuming from it will not repeat the run', logger='current',
                      level=logging.WARNING)
            return
        sampler = _sampler_of(runner.train_dataloader) if runner.train_loop is not None else None
        checkpoint['rng_state'] = dict(
            world_size=len(ranks), ranks=ranks,
            sampler=dict(seed=getattr(sampler, 'seed', None), epoch=getattr(sampler, 'epoch', None)))

    # resuming -----------------------------------------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return  # initialising weights (load_from) keeps this run's own generators
        state = checkpoint.get('rng_state')
        if state is None:
            print_log('the checkpoint holds no random generator states (written before they were saved): '
                      'the resumed run re-seeds and will not repeat the uninterrupted one', logger='current',
                      level=logging.WARNING)
        self._pending = state

    def before_train(self, runner) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        sampler = _sampler_of(runner.train_dataloader)
        if state['sampler'].get('seed') is not None and hasattr(sampler, 'seed'):
            sampler.seed = int(state['sampler']['seed'])
        rank, world = get_rank(), get_world_size()
        if state['world_size'] != world:
            print_log(f'the checkpoint was written by {state["world_size"]} processes and this run has {world}: '
                      f'random generators restored from rank {rank % state["world_size"]}; the resumed run will '
                      f'not repeat the uninterrupted one', logger='current', level=logging.WARNING)
        own = state['ranks'][rank % state['world_size']]
        loader, loop = runner.train_dataloader, runner.train_loop
        iterator = getattr(loop, 'dataloader_iterator', None)
        if iterator is None and getattr(loader, 'persistent_workers', False) and getattr(loader, 'num_workers', 0):
            print_log('persistent dataloader workers keep their random generators in their own processes, which no '
                      'checkpoint holds: the resumed workers are seeded afresh from the restored main generator, '
                      'so augmentations from here on differ from the uninterrupted run (set '
                      'train_dataloader.persistent_workers=False for an exact resume)', logger='current',
                      level=logging.WARNING)
        if iterator is not None and loop.iter > 0:  # iteration-based: mmengine replays loop.iter batches first
            loop.dataloader_iterator = _RestoreBeforeNext(iterator, loop.iter, lambda: restore_rng_state(own))
        else:
            restore_rng_state(own)

    # validation on a copy of the generators ----------------------------------------------------------------
    def before_val(self, runner) -> None:
        self._outside_val = capture_rng_state()
        self._val_ranks = self._all_ranks(self._outside_val)  # for a best-model checkpoint saved in validation

    def after_val(self, runner) -> None:
        if self._outside_val is not None:
            restore_rng_state(self._outside_val)
        self._outside_val = self._val_ranks = None
