# Runtime shared by every training config: mmengine Runner hooks, logging, environment.
default_scope = 'mobilevision'
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # checkpoints are written atomically (tasks.checkpoint); keep a few for resuming after a crash
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# dist_cfg.backend None: tools/train.py picks nccl with CUDA, gloo on CPU (--dist-backend overrides)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend=None))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
custom_hooks = [dict(type='PlainLogHistoryHook')]  # checkpoints that load with weights_only=True
load_from = None
resume = False
randomness = dict(seed=0)
