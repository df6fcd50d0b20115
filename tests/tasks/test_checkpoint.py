"""Checkpoints: atomic writes, safe loading (foreign pickles refused), resume after SIGKILL."""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from backbones.checkpoint_io import UnsafeCheckpointError, safe_load
from tasks.checkpoint import AtomicLocalBackend, atomic_write_bytes, find_resumable_checkpoint, load_local_checkpoint


class _RunsCode:
    """Unpickling this object would create a folder: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_checkpoint_with_foreign_pickled_objects_is_refused(tmp_path):
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(2)}, 'payload': _RunsCode(str(marker))}, path)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        load_local_checkpoint(str(path))
    assert not marker.exists()


def test_plain_checkpoint_loads(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save({'state_dict': {'w': torch.ones(3)}, 'meta': {'epoch': 2}}, path)
    assert safe_load(str(path))['meta']['epoch'] == 2


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'old and complete')

    def broken_fsync(fd):
        raise OSError('disk full')
    monkeypatch.setattr(os, 'fsync', broken_fsync)
    with pytest.raises(OSError, match='disk full'):
        atomic_write_bytes(b'new', target)
    assert target.read_bytes() == b'old and complete'
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']  # no temporary file left behind


def test_mmengine_writes_through_the_atomic_backend():
    from mmengine.fileio import get_file_backend
    assert isinstance(get_file_backend('/some/work_dir/epoch_1.pth'), AtomicLocalBackend)


def test_resumable_checkpoint_skips_a_broken_marker(tmp_path):
    good = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}}, good)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_9.pth'))  # points at a deleted file
    assert find_resumable_checkpoint(tmp_path) == str(good)


def _train_cmd(repo: Path, work_dir: Path, epochs: int, resume: bool = False):
    cmd = [sys.executable, str(repo / 'tools' / 'train.py'), str(repo / 'configs' / 'espcn_x2_500e_t91.py'),
           '--work-dir', str(work_dir), '--threads', '1', '--cfg-options',
           f'train_dataloader.dataset.data_root={repo / "tests" / "assets" / "sr" / "Set5"}',
           'train_dataloader.dataset.num_samples=64', 'train_dataloader.batch_size=4',
           f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=1000',
           'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=2',
           'default_hooks.logger.interval=2']
    if resume:
        cmd.append('--resume')
    return cmd


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_and_finishes_all_epochs(repo, tmp_path):
    epochs = 4
    work = tmp_path / 'run'
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen(_train_cmd(repo, work, epochs), cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    mid_third_epoch = re.compile(r'Epoch\(train\)\s+\[3\]\[\s*(2|4|6)/16\]')
    try:
        for line in proc.stdout:  # two epochs done and checkpointed, then killed inside the third
            if mid_third_epoch.search(line):
                break
        else:
            pytest.fail('training ended before it could be killed')
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (work / 'epoch_2.pth').exists()
    assert not (work / f'epoch_{epochs}.pth').exists()
    out = subprocess.run(_train_cmd(repo, work, epochs, resume=True), cwd=repo, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'resuming from' in out.stdout
    final = safe_load(str(work / f'epoch_{epochs}.pth'))
    assert final['meta']['epoch'] == epochs
    assert final['meta']['iter'] == epochs * 64 // 4  # the same number of steps as an uninterrupted run
    assert 'Epoch(train)   [1]' not in out.stdout + out.stderr  # it did not start over


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    path = tmp_path / 'notes.pth'
    path.write_text('just some text')
    with pytest.raises(RuntimeError, match='notes.pth: not a PyTorch checkpoint'):
        safe_load(str(path))
