"""Checkpoints written atomically and read without running code, wired into mmengine.

- ``AtomicLocalBackend`` replaces mmengine's local file backend: every file the Runner puts (checkpoints first of
  all) is written to a temporary file in the same folder, flushed, fsynced, then renamed over the target, so a
  crash never leaves a half-written checkpoint.
- ``load_local_checkpoint`` replaces mmengine's local checkpoint loader (which calls ``torch.load`` without
  ``weights_only`` and breaks under torch >= 2.6) with ``backbones.checkpoint_io.safe_load``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional, Union

import torch
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.runner.checkpoint import CheckpointLoader

from mmengine.hooks import Hook
from mmengine.logging.history_buffer import HistoryBuffer

from backbones.checkpoint_io import UnsafeCheckpointError, safe_load, state_dict_of
from .registry import HOOKS

__all__ = ['AtomicLocalBackend', 'atomic_write_bytes', 'atomic_torch_save', 'load_local_checkpoint',
           'find_resumable_checkpoint', 'PlainLogHistoryHook', 'safe_load', 'state_dict_of', 'UnsafeCheckpointError']


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


def find_resumable_checkpoint(work_dir: Union[str, Path]) -> Optional[str]:
    """The newest checkpoint in ``work_dir`` that opens; ``last_checkpoint`` first, then ``epoch_*/iter_*``.

    A run killed mid-write leaves no partial checkpoint (writes are atomic), but ``last_checkpoint`` (written by
    mmengine's hook with a plain ``open``) may be empty or name a deleted file; then the newest file on disk wins.
    """
    work_dir = Path(work_dir)
    candidates = []
    marker = work_dir / 'last_checkpoint'
    if marker.is_file():
        named = marker.read_text().strip()
        if named:
            candidates.append(Path(named))
    numbered = sorted(work_dir.glob('*_*.pth'), key=lambda p: p.stat().st_mtime, reverse=True)
    candidates += numbered
    for path in candidates:
        if path.is_file():
            try:
                safe_load(str(path))
            except (RuntimeError, OSError):
                continue
            return str(path)
    return None
