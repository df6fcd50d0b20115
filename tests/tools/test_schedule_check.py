"""ScheduleCheckHook: a schedule longer than the training loop is reported, and a run resumed with a changed
schedule continues along the config's schedule (mmengine alone keeps the checkpoint's, silently)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backbones.checkpoint_io import safe_load
from tasks.schedule_check import SHAPE_KEYS, schedule_differences

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ddp_probe import tiny_espcn_config  # noqa: E402


def test_schedule_differences_names_the_shape_keys_only():
    saved = dict(begin=0, end=10, T_max=10, eta_min=1e-5, last_step=7, base_values=[1e-3])
    config = dict(begin=0, end=20, T_max=20, eta_min=1e-5, last_step=0, base_values=[1e-3])
    assert schedule_differences(config, saved) == {'end': (10, 20), 'T_max': (10, 20)}
    assert 'last_step' not in SHAPE_KEYS and schedule_differences(saved, dict(saved)) == {}


def _train(repo: Path, config: str, work_dir: Path, *options: str, resume: bool = False) -> str:
    cmd = [sys.executable, str(repo / 'tools' / 'train.py'), config, '--work-dir', str(work_dir), '--threads', '1',
           '--cfg-options', 'train_dataloader.num_workers=0', *options] + (['--resume'] if resume else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get('PYTHONPATH', '')]))
    done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.mark.slow
def test_short_loop_is_reported_and_resume_follows_the_config_schedule(repo, tmp_path):
    # ESPCN's base config: cosine over T_max = 500 epochs (converted to iterations); 2 epochs of 2 iterations here
    config = tiny_espcn_config(repo, tmp_path, epochs=2, num_samples=8, val_samples=1)
    log = _train(repo, config, tmp_path / 'run')
    assert 'runs to iteration 1000 but training stops at 4: the schedule will not finish' in log
    first = safe_load(str(tmp_path / 'run' / 'epoch_2.pth'))['param_schedulers'][0]
    assert first['T_max'] == 1000 and first['last_step'] == 3  # steps count from 0

    # resumed for 2 more epochs with the schedule fitted to the 4 epochs: the config's T_max (8 iterations) wins
    log = _train(repo, config, tmp_path / 'run', 'train_cfg.max_epochs=4', 'param_scheduler.0.T_max=4',
                 resume=True)
    assert "resuming with a learning-rate schedule that differs from the checkpoint's" in log
    assert 'T_max 1000 -> 8' in log  # 4 epochs x 2 iterations
    assert 'schedule will not finish' not in log
    last = safe_load(str(tmp_path / 'run' / 'epoch_4.pth'))['param_schedulers'][0]
    assert last['T_max'] == 8 and last['end'] == 8
    lr = safe_load(str(tmp_path / 'run' / 'epoch_4.pth'))['optimizer']['param_groups'][0]['lr']
    # mmengine alone restores end=4 and T_max=1000: no step after iteration 4, the lr stays at ~1e-3 for the new
    # epochs; along the config's 8-iteration cosine it is down to 2.2e-4 (the checkpoint's schedule had ended one
    # step early at its end, so the resumed curve is one step behind an uninterrupted 4-epoch run's 1.5e-4)
    assert lr < 3e-4
