"""Exact resume: a training killed with SIGKILL and resumed ends with the same weights as an uninterrupted one."""
import os
import random
import re
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import worker_init_fn as mmengine_worker_init_fn
from torch.utils.data import DataLoader, Dataset

from backbones.checkpoint_io import safe_load
from tasks.rng_state import capture_rng_state, restore_rng_state, seed_worker

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ddp_probe import tiny_espcn_config  # noqa: E402


def _draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_generator_states_survive_a_weights_only_checkpoint(tmp_path):
    np.random.randn()  # leaves a cached gaussian in numpy's state
    random.gauss(0, 1)
    state = capture_rng_state()
    expected = _draws()
    torch.save({'rng_state': state}, tmp_path / 'c.pth')
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    restore_rng_state(safe_load(str(tmp_path / 'c.pth'))['rng_state'])
    assert _draws() == expected


class _RandomNumbers(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        return torch.tensor([np.random.rand(), random.random(), torch.rand(()).item()])


def _two_epochs(worker_init_fn):
    torch.manual_seed(0)
    loader = DataLoader(_RandomNumbers(), batch_size=2, num_workers=2, worker_init_fn=worker_init_fn)
    return [torch.cat(list(loader)) for _ in range(2)]


def test_worker_seeds_change_every_epoch():
    mm_first, mm_second = _two_epochs(partial(mmengine_worker_init_fn, num_workers=2, rank=0, seed=0))
    assert torch.equal(mm_first, mm_second)  # mmengine's workers repeat the same augmentations every epoch
    first, second = _two_epochs(seed_worker)
    assert not torch.equal(first[:, 0], second[:, 0]) and not torch.equal(first[:, 1], second[:, 1])
    assert not torch.equal(first[:, 2], second[:, 2])
    again, _ = _two_epochs(seed_worker)
    assert torch.equal(first, again)  # and are reproduced from the main generator


def test_worker_seeds_differ_between_ranks(monkeypatch):
    first, _ = _two_epochs(seed_worker)
    monkeypatch.setenv('RANK', '1')
    other_rank, _ = _two_epochs(seed_worker)
    assert not torch.equal(first[:, 0], other_rank[:, 0])


def _train_cmd(repo: Path, config: str, work_dir: Path, workers: int, resume: bool = False):
    cmd = [sys.executable, str(repo / 'tools' / 'train.py'), config, '--work-dir', str(work_dir),
           '--threads', '1', '--cfg-options', f'train_dataloader.num_workers={workers}']
    if resume:
        cmd.append('--resume')
    return cmd


def _weights(path: Path) -> dict:
    return safe_load(str(path))['state_dict']


@pytest.mark.slow
@pytest.mark.parametrize('workers,loop', [(0, 'epoch'), (2, 'epoch'), (0, 'iteration')])
def test_killed_and_resumed_training_ends_with_the_same_weights(repo, tmp_path, workers, loop):
    """4 epochs of 6 iterations (or 24 iterations, checkpoints every 6), killed before the third block of 6
    iterations, resumed from the second checkpoint; the last checkpoints must hold the same weights."""
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get('PYTHONPATH', '')]))
    iterations = loop == 'iteration'
    config = tiny_espcn_config(repo, tmp_path, epochs=4, num_samples=24, val_samples=2,
                               max_iters=24 if iterations else None)
    last, resume_from = ('iter_24.pth', 'iter_12.pth') if iterations else ('epoch_4.pth', 'epoch_2.pth')
    pause = dict(PROBE_PAUSE_AT_ITER='14') if iterations else dict(PROBE_PAUSE_AT_EPOCH='2')
    whole = subprocess.Popen(_train_cmd(repo, config, tmp_path / 'whole', workers), cwd=repo, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed = tmp_path / 'killed'
    proc = subprocess.Popen(_train_cmd(repo, config, killed, workers), cwd=repo, env=dict(env, **pause),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # two blocks trained, validated and checkpointed; killed in the third
            if 'probe: paused' in line:
                break
        else:
            pytest.fail('training ended before it could be killed')
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (killed / last).exists()
    resumed = subprocess.run(_train_cmd(repo, config, killed, workers, resume=True), cwd=repo, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert re.search(rf'resuming from .*{resume_from}', resumed.stdout)
    assert whole.wait(timeout=300) == 0, whole.stderr.read()[-2000:]
    expected, got = _weights(tmp_path / 'whole' / last), _weights(killed / last)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name  # bitwise
