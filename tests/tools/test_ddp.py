"""Training beyond one process: torchrun with gloo on CPU, DDP set-up, launch options and their errors."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from backbones.checkpoint_io import safe_load
from tasks import load_config
from tasks.distributed import check_eval_samplers, configure_distributed, init_distributed, slurm_environment
from tasks.training_options import batch_summary, enable_amp, enable_auto_scale_lr, enable_ema

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ddp_probe import tiny_espcn_config  # noqa: E402


def test_cpu_ddp_is_wrapped_without_device_ids():
    cfg = Config(dict(model_wrapper_cfg=None, env_cfg=dict(dist_cfg=dict(backend=None))))
    configure_distributed(cfg, 'pytorch', 'gloo')
    if not torch.cuda.is_available():
        assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', device_ids=None,
                                             broadcast_buffers=False, find_unused_parameters=False)
    assert cfg.launcher == 'pytorch' and cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.randomness.diff_rank_seed is True


def test_single_process_config_is_left_alone():
    cfg = Config(dict(randomness=dict(seed=0)))
    configure_distributed(cfg, 'none', 'gloo')
    assert 'model_wrapper_cfg' not in cfg and 'diff_rank_seed' not in cfg.randomness


def test_runtime_config_does_not_hard_code_nccl(repo):
    cfg = load_config(repo / 'configs' / 'espcn_x3_500e_t91.py')
    assert cfg.env_cfg.dist_cfg.get('backend') is None


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU refusals')
def test_gpu_only_options_fail_clearly_on_cpu():
    with pytest.raises(ValueError, match='--sync-bn needs CUDA'):
        configure_distributed(Config(dict()), 'pytorch', 'gloo', sync_bn=True)
    with pytest.raises(ValueError, match='--amp needs a CUDA GPU'):
        enable_amp(Config(dict(optim_wrapper=dict(type='OptimWrapper'))), 'bfloat16')


def test_sync_bn_needs_several_processes():
    with pytest.raises(ValueError, match='--launcher pytorch or slurm'):
        configure_distributed(Config(dict()), 'none', 'gloo', sync_bn=True)


def test_launcher_without_torchrun_variables_names_them(monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match='RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT not set'):
        init_distributed('pytorch', 'gloo')


def test_slurm_variables_become_torchrun_variables():
    env = dict(SLURM_PROCID='9', SLURM_NTASKS='16', SLURM_LOCALID='1', MASTER_ADDR='node-a')
    assert slurm_environment(env) == dict(RANK='9', WORLD_SIZE='16', LOCAL_RANK='1', MASTER_ADDR='node-a',
                                          MASTER_PORT='29500')
    with pytest.raises(RuntimeError, match='SLURM_PROCID'):
        slurm_environment({})


def test_evaluation_sampler_that_would_drop_samples_is_refused():
    check_eval_samplers(dict(val_dataloader=dict(sampler=dict(type='DefaultSampler', shuffle=False))))
    with pytest.raises(ValueError, match='val_dataloader.sampler has round_up=False'):
        check_eval_samplers(dict(val_dataloader=dict(sampler=dict(type='DefaultSampler', round_up=False))))


def test_linear_lr_scaling_and_batch_summary():
    cfg = Config(dict(train_dataloader=dict(batch_size=24), auto_scale_lr=dict(enable=False, base_batch_size=192)))
    assert 'lr as in the config (set for a total batch of 192' in batch_summary(cfg, 2)
    assert enable_auto_scale_lr(cfg) == 192 and cfg.auto_scale_lr.enable
    assert batch_summary(cfg, 8) == ('batch: 24 per process x 8 process(es) = 192 in total; '
                                     'lr scaled by 192/192 = 1 (linear scaling rule)')
    with pytest.raises(ValueError, match='has no auto_scale_lr.base_batch_size'):
        enable_auto_scale_lr(Config(dict(train_dataloader=dict(batch_size=4))))


def test_ema_hook_is_added_once():
    cfg = Config(dict(custom_hooks=[dict(type='PlainLogHistoryHook')]))
    enable_ema(cfg, 0.001)
    enable_ema(cfg, 0.001)
    assert [h['type'] for h in cfg.custom_hooks] == ['PlainLogHistoryHook', 'EMAHook']


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _torchrun(repo: Path, config: str, work: Path, *extra: str):
    return [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={_free_port()}',
            str(repo / 'tools' / 'train.py'), config, '--work-dir', str(work), '--launcher', 'pytorch',
            '--threads', '1', *extra]


def _single_process_metrics(repo: Path, checkpoint: Path, work: Path) -> dict:
    cfg = load_config(repo / 'configs' / 'espcn_x2_500e_t91.py')
    cfg.test_evaluator.baseline = False
    cfg.work_dir, cfg.load_from, cfg.resume = str(work), str(checkpoint), False
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
        cfg.pop(key, None)
    return Runner.from_cfg(cfg).test()


@pytest.mark.slow
def test_torchrun_two_processes_gloo_train_kill_resume_and_evaluate(repo, tmp_path):
    epochs = 4
    config, work = tiny_espcn_config(repo, tmp_path, epochs, num_samples=48), tmp_path / 'run'
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.Popen(_torchrun(repo, config, work), cwd=repo, env=dict(env, PROBE_PAUSE_AT_EPOCH='2'),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    try:
        for line in proc.stdout:  # two epochs trained, validated and checkpointed; the job dies at the third
            seen.append(line)
            if 'probe: paused' in line:
                break
        else:
            pytest.fail('training ended before it could be killed:\n' + ''.join(seen[-30:]))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks at once, as a lost node
        proc.wait()
    assert 'batch: 4 per process x 2 process(es) = 8 in total' in ''.join(seen)
    assert (work / 'epoch_2.pth').exists() and not (work / f'epoch_{epochs}.pth').exists()

    resumed = subprocess.run(_torchrun(repo, config, work, '--resume'), cwd=repo, env=env, capture_output=True,
                             text=True, timeout=400)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert re.search(r'resuming from .*epoch_2\.pth', log) and 'Epoch(train) [1]' not in log
    final = safe_load(str(work / f'epoch_{epochs}.pth'))
    assert final['meta']['epoch'] == epochs and final['meta']['iter'] == epochs * 48 // 8
    assert final['rng_state']['world_size'] == 2

    probe = work / 'probe'
    for epoch in range(epochs):  # each rank trains on its own half of the epoch's samples
        shards = [json.loads((probe / f'shard_rank{r}_epoch{epoch}.json').read_text()) for r in range(2)]
        assert len(shards[0]) == len(shards[1]) == 24 and not set(shards[0]) & set(shards[1])
        assert sorted(shards[0] + shards[1]) == list(range(48))
    weights = [torch.load(probe / f'weights_rank{r}.pt') for r in range(2)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])  # replicas stay identical
    assert all(torch.equal(weights[0][k], final['state_dict'][k]) for k in weights[0])  # rank 0 saved them

    # validation gathered from both ranks (3 + 3 images, one padding duplicate dropped) = one process on all 5
    ddp_metrics = json.loads((probe / f'val_rank0_epoch{epochs}.json').read_text())
    single = _single_process_metrics(repo, work / f'epoch_{epochs}.pth', tmp_path / 'single')
    assert ddp_metrics['sr/PSNR'] == pytest.approx(single['sr/PSNR'], abs=1e-9)
    assert ddp_metrics['sr/SSIM'] == pytest.approx(single['sr/SSIM'], abs=1e-9)
    assert json.loads((probe / f'val_rank1_epoch{epochs}.json').read_text()) == ddp_metrics


def _train_main():
    sys.path.insert(0, str(HERE.parents[1] / 'tools'))
    import train
    return train.main


@pytest.mark.slow
def test_ema_weights_are_validated_saved_and_resumed(repo, tmp_path):
    config, work = tiny_espcn_config(repo, tmp_path, 2, num_samples=16, val_samples=2), tmp_path / 'ema'
    main = _train_main()
    main([config, '--work-dir', str(work), '--ema', '0.01', '--cfg-options', 'train_cfg.max_epochs=1'])
    first = safe_load(str(work / 'epoch_1.pth'))
    raw = {k[len('module.'):]: v for k, v in first['ema_state_dict'].items() if k.startswith('module.')}
    assert raw.keys() == first['state_dict'].keys()
    assert any(not torch.equal(raw[k], first['state_dict'][k]) for k in raw)  # saved weights are the average
    # the validation after epoch 1 scored the averaged weights: the same numbers as testing the saved state_dict
    validated = json.loads((work / 'probe' / 'val_rank0_epoch1.json').read_text())
    cfg = load_config(config)
    cfg.work_dir, cfg.load_from, cfg.resume = str(tmp_path / 'test'), str(work / 'epoch_1.pth'), False
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
        cfg.pop(key, None)
    cfg.custom_hooks = []
    cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator  # the same 2 images
    tested = Runner.from_cfg(cfg).test()
    assert validated['sr/PSNR'] == pytest.approx(tested['sr/PSNR'], abs=1e-9)
    main([config, '--work-dir', str(work), '--ema', '0.01', '--resume'])
    assert safe_load(str(work / 'epoch_2.pth'))['meta']['epoch'] == 2
