"""Learning-rate schedules that silently stop short, or that a resumed run silently keeps from the checkpoint.

Two mmengine behaviours give a run a schedule other than the one its config describes, with no message:

- A scheduler's length is fixed when the config is read (``T_max=max_epochs`` in our configs), so
  ``--cfg-options train_cfg.max_epochs=10`` on a 500-epoch recipe trains 10 epochs of a 500-epoch cosine: the
  learning rate never decays.
- Resuming restores each scheduler's whole ``__dict__`` from the checkpoint (``_ParamScheduler.load_state_dict``), so
  a run resumed with a longer ``max_epochs`` (and a matching ``T_max``/``end``) keeps the checkpoint's old schedule,
  and its extra epochs run at the final learning rate.

``ScheduleCheckHook`` (added to every ``tools/train.py`` run) warns about the first and, when resuming, makes the
config's schedule the one that continues: the checkpoint's progress (``last_step``, the current values) is kept,
its shape (``begin``, ``end``, ``T_max``, milestones, factors...) is replaced by the config's, and the change is
logged.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log

from .registry import HOOKS

__all__ = ['SHAPE_KEYS', 'schedule_differences', 'ScheduleCheckHook']

#: Scheduler attributes that define the schedule's shape (mmengine 0.10's ``_ParamScheduler`` subclasses); the
#: others (``last_step``, ``base_values``, ``_global_step``...) are the run's progress and come from the checkpoint.
SHAPE_KEYS = ('begin', 'end', 'by_epoch', 'T_max', 'eta_min', 'eta_min_ratio', 'milestones', 'gamma', 'step_size',
              'start_factor', 'end_factor', 'total_iters', 'factor', 'power', 'periods', 'restart_weights',
              'cumulative_periods', 'eta_max', 'total_steps', 'pct_start', 'div_factor', 'final_div_factor')
_INFINITY = 1e9  # mmengine's "no end" is INF = 1000000000


def _schedulers(schedulers) -> List[Tuple[str, object]]:
    if schedulers is None:
        return []
    if isinstance(schedulers, dict):
        return [(f'{name}[{i}]', s) for name, group in schedulers.items() for i, s in enumerate(group)]
    return [(f'[{i}]', s) for i, s in enumerate(schedulers)]


def schedule_differences(config_state: Dict, checkpoint_state: Dict) -> Dict[str, Tuple[object, object]]:
    """``{key: (checkpoint value, config value)}`` for the shape keys that differ."""
    return {key: (checkpoint_state[key], config_state[key]) for key in SHAPE_KEYS
            if key in config_state and key in checkpoint_state and checkpoint_state[key] != config_state[key]}


def _checkpoint_states(checkpoint_schedulers) -> List[Dict]:
    if isinstance(checkpoint_schedulers, dict):
        return [state for group in checkpoint_schedulers.values() for state in group]
    return list(checkpoint_schedulers or [])


@HOOKS.register_module()
class ScheduleCheckHook(Hook):
    """Warns when a scheduler ends after the training loop; on resume, continues with the config's schedule."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False) or 'param_schedulers' not in checkpoint:
            return
        ours = _schedulers(runner.param_schedulers)
        if not ours or not all(hasattr(s, 'state_dict') for _, s in ours):
            return  # not built yet (no training loop): nothing to compare
        saved = _checkpoint_states(checkpoint['param_schedulers'])
        changes: List[str] = []
        for (where, scheduler), state in zip(ours, saved):
            differences = schedule_differences(scheduler.state_dict(), state)
            for key, (old, new) in differences.items():
                state[key] = new  # the resumed scheduler continues along the config's schedule
            if differences:
                changes.append(f'param_scheduler{where} {type(scheduler).__name__}: ' + ', '.join(
                    f'{key} {old} -> {new}' for key, (old, new) in differences.items()))
        if len(saved) != len(ours):
            changes.append(f'the checkpoint has {len(saved)} scheduler(s), the config {len(ours)}: mmengine pairs '
                           f'them in order')
        if changes:
            print_log('resuming with a learning-rate schedule that differs from the checkpoint\'s; the run continues '
                      'from the checkpoint\'s step along the config\'s schedule (' + '; '.join(changes) + ')',
                      logger='current', level=logging.WARNING)

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        total = getattr(loop, 'max_iters', None)
        for where, scheduler in _schedulers(runner.param_schedulers):
            # mmengine sets a missing ``end`` to the loop's length, so a cosine whose T_max outlasts the loop is
            # cut there, before reaching eta_min: its curve spans begin + T_max steps whatever ``end`` says
            end, span = getattr(scheduler, 'end', None), getattr(scheduler, 'T_max', None)
            finish = scheduler.begin + span if span is not None else end
            if finish is None or finish >= _INFINITY:
                continue
            limit = getattr(loop, 'max_epochs', None) if scheduler.by_epoch else total
            if limit is not None and finish > limit:
                unit = 'epoch' if scheduler.by_epoch else 'iteration'
                print_log(f'param_scheduler{where} {type(scheduler).__name__} runs to {unit} {finish} but training '
                          f'stops at {limit}: the schedule will not finish (a config reads max_epochs once: changing '
                          f'train_cfg.max_epochs leaves the scheduler as it was; set both, e.g. --cfg-options '
                          f'train_cfg.max_epochs=N param_scheduler.0.T_max=N)',
                          logger='current', level=logging.WARNING)


def describe(schedulers: Sequence) -> List[str]:
    """One line per scheduler: type and shape keys (for logs and tests)."""
    return [f'{type(s).__name__} ' + ', '.join(f'{k}={v}' for k, v in s.state_dict().items() if k in SHAPE_KEYS)
            for _, s in _schedulers(schedulers)]
