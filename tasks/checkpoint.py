"""Checkpoints written atomically and read without running code, wired into mmengine.

- ``AtomicLocalBackend`` replaces mmengine's local file backend: every file the Runner puts (checkpoints first of
  all) is written to a temporary file in the same folder, flushed, fsynced, then renamed over the target, so a
  crash never leaves a half-written checkpoint.
- ``load_local_checkpoint`` replaces mmengine's local checkpoint loader (which calls ``torch.load`` without
  ``weights_only`` and breaks under torch >= 2.6) with ``backbones.checkpoint_io.safe_load``.
- ``strict_runner_load_checkpoint`` replaces ``Runner.load_checkpoint``, which mmengine calls with
  ``strict=False`` for ``load_from`` (``tools/test.py``, ``tools/train.py --load-from``) and for resuming, and
  which only logs a warning when the weights do not fit: the checkpoint's keys and shapes are compared with the
  model by ``backbones.checkpoint_io.check_state_dict`` first, and a mismatch is an error naming the file and the
  keys. Keys listed in the model config's ``init_cfg=dict(allow_missing=[...])`` may be missing (not when
  resuming, which must restore the whole model).
- ``StrictPretrainedInit`` replaces mmengine's ``init_cfg=dict(type='Pretrained', ...)`` initializer (also
  ``strict=False``) with the same comparison.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.model import is_model_wrapper
from mmengine.model.weight_init import PretrainedInit
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, _load_checkpoint_to_model

from mmengine.hooks import Hook
from mmengine.logging.history_buffer import HistoryBuffer

from backbones.checkpoint_io import (UnsafeCheckpointError, check_state_dict, model_load_options, safe_load,
                                     state_dict_of)
from .registry import HOOKS

__all__ = ['AtomicLocalBackend', 'atomic_write_bytes', 'atomic_torch_save', 'load_local_checkpoint',
           'find_resumable_checkpoint', 'PlainLogHistoryHook', 'strict_runner_load_checkpoint', 'safe_load',
           'state_dict_of', 'UnsafeCheckpointError']


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` through a temporary file and ``os.replace``."""
    filepath = os.fspath(filepath)
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(filepath) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_torch_save(obj, filepath: Union[str, Path]) -> None:
    import io
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), filepath)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose writes are atomic."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


register_backend('local', AtomicLocalBackend, force=True, prefixes='')


def _plain_history(buffer: HistoryBuffer) -> dict:
    return dict(log_history=buffer._log_history, count_history=buffer._count_history,
                max_length=buffer.max_length)


def _restore_history(checkpoint: dict) -> dict:
    """Turn the plain log-history dicts written by ``PlainLogHistoryHook`` back into ``HistoryBuffer``s."""
    hub = checkpoint.get('message_hub') if isinstance(checkpoint, dict) else None
    if isinstance(hub, dict) and isinstance(hub.get('log_scalars'), dict):
        hub['log_scalars'] = {k: HistoryBuffer(v['log_history'], v['count_history'], int(v['max_length']))
                              if isinstance(v, dict) else v for k, v in hub['log_scalars'].items()}
    return checkpoint


@HOOKS.register_module()
class PlainLogHistoryHook(Hook):
    """Store the Runner's log history as plain arrays so checkpoints load with ``weights_only=True``.

    mmengine pickles its ``HistoryBuffer`` objects with bound methods (``getattr``), which a safe loader must
    refuse; this hook replaces them by dicts of arrays before saving, and the loader restores them.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.get('message_hub')
        if isinstance(hub, dict) and isinstance(hub.get('log_scalars'), dict):
            hub['log_scalars'] = {k: _plain_history(v) if isinstance(v, HistoryBuffer) else v
                                  for k, v in hub['log_scalars'].items()}


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_local_checkpoint(filename: str, map_location=None):
    """mmengine's loader for local paths, with ``weights_only=True`` and our allow-list."""
    return _restore_history(safe_load(os.path.expanduser(filename), map_location=map_location or 'cpu'))


def _revised_state(checkpoint: dict, revise_keys: Sequence[Tuple[str, str]]) -> 'OrderedDict[str, object]':
    """The state dict mmengine would load: ``state_dict`` (or the checkpoint itself) with ``revise_keys`` applied."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else {}
    if not isinstance(state, dict):
        raise TypeError(f'the checkpoint\'s state_dict is a {type(state).__name__}, not a dict')
    revised = OrderedDict()
    for key, value in state.items():
        for pattern, replacement in revise_keys:
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    return revised


def strict_runner_load_checkpoint(runner: Runner, filename: str, map_location: Union[str, Callable] = 'cpu',
                                  strict: bool = False, revise_keys: list = [(r'^module.', '')]) -> dict:
    """``Runner.load_checkpoint`` that refuses weights that do not fit the model (mmengine only warns).

    Same steps as mmengine 0.10.7's method (load, ``after_load_checkpoint`` hooks, load into the unwrapped model),
    with the key and shape comparison of ``check_state_dict`` before loading. ``strict`` is kept for the signature:
    loading is always strict, within the model config's ``allow_missing`` / ``allow_unexpected`` (ignored when
    resuming).
    """
    checkpoint = _load_checkpoint(filename, map_location=map_location)
    runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if not isinstance(checkpoint, dict):
        raise RuntimeError(f'checkpoint {filename} is a {type(checkpoint).__name__}, not a dict of tensors')
    options = {} if getattr(runner, '_resume', False) else model_load_options(model)
    state = OrderedDict(check_state_dict(model.state_dict(), _revised_state(checkpoint, revise_keys), str(filename),
                                         **options))
    checkpoint = dict(checkpoint, state_dict=state)
    checkpoint = _load_checkpoint_to_model(model, checkpoint, strict=False, revise_keys=[])
    runner._has_loaded = True
    runner.logger.info(f'Load checkpoint from {filename}')
    return checkpoint


Runner.load_checkpoint = strict_runner_load_checkpoint


@WEIGHT_INITIALIZERS.register_module(name='Pretrained', force=True)
class StrictPretrainedInit(PretrainedInit):
    """mmengine's ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=None)``, strict (mmengine's is not).

    ``allow_missing`` / ``allow_unexpected`` (globs) may be given here or in the model's ``init_cfg``.
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None, map_location: Union[str, Callable] = 'cpu',
                 allow_missing: Sequence[str] = (), allow_unexpected: Sequence[str] = ()) -> None:
        super().__init__(checkpoint, prefix, map_location)
        self.allow_missing, self.allow_unexpected = list(allow_missing), list(allow_unexpected)

    def __call__(self, module: torch.nn.Module) -> None:
        from mmengine.model.weight_init import update_init_info
        from mmengine.runner.checkpoint import _load_checkpoint_with_prefix
        if self.prefix is None:
            checkpoint = _load_checkpoint(self.checkpoint, map_location=self.map_location)
            state = _revised_state(checkpoint, [(r'^module\.', '')])
        else:
            state = _load_checkpoint_with_prefix(self.prefix, self.checkpoint, map_location=self.map_location)
        options = model_load_options(module)
        state = check_state_dict(module.state_dict(), state, str(self.checkpoint),
                                 options['allow_missing'] + self.allow_missing,
                                 options['allow_unexpected'] + self.allow_unexpected)
        module.load_state_dict(state, strict=False)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())


def find_resumable_checkpoint(work_dir: Union[str, Path]) -> Optional[str]:
    """The newest checkpoint in ``work_dir`` that opens; ``last_checkpoint`` first, then ``epoch_*/iter_*``.

    A run killed mid-write leaves no partial checkpoint (writes are atomic), but ``last_checkpoint`` (written by
    mmengine's hook with a plain ``open``) may be empty or name a deleted file; then the newest file on disk wins.
    Every checkpoint passed over is reported on stderr with the reason.
    """
    work_dir = Path(work_dir)
    candidates = []
    marker = work_dir / 'last_checkpoint'
    if marker.is_file():
        named = marker.read_text().strip()
        if named:
            candidates.append(Path(named))
    numbered = sorted(work_dir.glob('*_*.pth'), key=lambda p: p.stat().st_mtime, reverse=True)
    candidates += [p for p in numbered if p not in candidates]
    for path in candidates:
        if not path.is_file():
            _report(f'skipping checkpoint {path} (named in {marker}): the file does not exist')
            continue
        try:
            safe_load(str(path))
        except (RuntimeError, OSError) as err:
            _report(f'skipping checkpoint {path}: {err}')
            continue
        return str(path)
    return None


def _report(message: str) -> None:
    """Say on stderr why a checkpoint was passed over (``tools/train.py --resume`` runs this before the Runner)."""
    print(f'warning: {message}', file=sys.stderr)
