"""Reading checkpoints without running code: ``torch.load(weights_only=True)`` plus an allow-list.

Our checkpoints (mmengine Runner's, and the converted torchvision ones) hold tensors, plain containers, numpy
arrays and mmengine's ``HistoryBuffer`` (log history, for resume). Anything else is refused: a downloaded
checkpoint must not be able to execute code when it is opened (DESIGN.md, Checkpoints and weights).

Loading is strict on every path (the Runner's ``load_from``/resume, ``tasks.build_model``, backbone ``pretrained``,
``tools/convert_weights.py``): :func:`check_state_dict` is the one comparison of a checkpoint's keys and shapes
with the model's, and names the file and the keys that do not fit. A model config may list keys that may be
missing (glob patterns): ``model=dict(..., init_cfg=dict(allow_missing=['head.*']))``, and keys the checkpoint
may carry in excess: ``allow_unexpected=[...]``.
"""
from __future__ import annotations

import fnmatch
import os
import pickle
import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds pickled objects outside the allow-list."""


def _numpy_globals() -> List[Any]:
    allowed: List[Any] = [np.ndarray, np.dtype]
    for module_name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            module = __import__(module_name, fromlist=['_reconstruct', 'scalar'])
        except ImportError:
            continue
        allowed += [module._reconstruct, module.scalar]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return allowed


def checkpoint_allow_list() -> List[Any]:
    """Every non-tensor type our checkpoints may contain."""
    from collections import OrderedDict, defaultdict
    allowed: List[Any] = [OrderedDict, defaultdict, dict, set, frozenset, tuple, list] + _numpy_globals()
    try:
        from mmengine.config.config import ConfigDict
        allowed.append(ConfigDict)
    except ImportError:  # pragma: no cover
        pass
    return allowed


def _forbidden_global(err: Exception) -> str:
    """The line of torch's message that names a refused global (empty when the file is simply not a pickle)."""
    for line in str(err).splitlines():
        if re.search(r'unsupported global', line, re.IGNORECASE):
            return line.strip().split('. Please use')[0]
    return ''


def safe_load(filename: str, map_location: Any = 'cpu') -> Any:
    """Load ``filename`` with ``weights_only=True`` and our allow-list; refuse anything else clearly."""
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    try:
        with torch.serialization.safe_globals(checkpoint_allow_list()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        forbidden = _forbidden_global(err)
        if not forbidden:  # no refused object: the file is not a checkpoint at all
            raise RuntimeError(f'cannot read checkpoint {filename}: not a PyTorch checkpoint') from None
        raise UnsafeCheckpointError(
            f'refusing to load {filename}: it holds pickled objects outside the allow-list (tensors, containers, '
            f'numpy arrays), and loading them could execute code. {forbidden}') from None
    except (RuntimeError, EOFError, KeyError, ValueError, IndexError, TypeError, AttributeError) as err:
        raise RuntimeError(f'cannot read checkpoint {filename}: not a PyTorch checkpoint, or truncated '
                           f'({type(err).__name__}: {str(err)[:200]})') from err


def state_dict_of(checkpoint: Any) -> dict:
    """The parameter dict inside a checkpoint (mmengine wraps it in ``state_dict``; some tools in ``model``)."""
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if key in checkpoint and isinstance(checkpoint[key], dict):
                return checkpoint[key]
        return checkpoint
    raise TypeError(f'a checkpoint must be a dict, got {type(checkpoint).__name__}')


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's tensors do not fit the model it is loaded into (missing, unexpected or other shapes)."""


LOAD_OPTION_KEYS = ('allow_missing', 'allow_unexpected')


def split_load_options(init_cfg: Any) -> Tuple[Any, Dict[str, List[str]]]:
    """Take ``allow_missing`` / ``allow_unexpected`` out of a model's ``init_cfg``.

    ``init_cfg=dict(allow_missing=['head.*'])`` lets a checkpoint lack the keys matching those glob patterns (and
    have other shapes there: e.g. fine-tuning on new classes). What remains is a normal mmengine ``init_cfg``
    (``None`` when nothing remains), so ``BaseModule.init_weights`` never sees our options.
    """
    options: Dict[str, List[str]] = {k: [] for k in LOAD_OPTION_KEYS}
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    rest = []
    for cfg in cfgs:
        if isinstance(cfg, dict):
            cfg = dict(cfg)
            for key in LOAD_OPTION_KEYS:
                value = cfg.pop(key, None)
                if value is None:
                    continue
                patterns = [value] if isinstance(value, str) else list(value)
                if not all(isinstance(p, str) for p in patterns):
                    raise ValueError(f'init_cfg.{key} must be a list of key patterns (globs), got {value!r}')
                options[key] += patterns
            if not cfg:
                continue
        if cfg is not None:
            rest.append(cfg)
    if not isinstance(init_cfg, (list, tuple)):
        return (rest[0] if rest else None), options
    return rest, options


def model_load_options(model: Any) -> Dict[str, List[str]]:
    """The ``allow_missing`` / ``allow_unexpected`` patterns of a model (``load_options``, else its ``init_cfg``)."""
    options = getattr(model, 'load_options', None)
    if isinstance(options, dict):
        return {k: list(options.get(k, ())) for k in LOAD_OPTION_KEYS}
    return split_load_options(getattr(model, 'init_cfg', None))[1]


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def _listed(items: List[str], limit: int = 8) -> str:
    more = f' ... ({len(items) - limit} more)' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


def _torchvision_hint(keys: Sequence[str]) -> str:
    """A hint when the checkpoint's keys look like a torchvision model's (it needs converting first)."""
    tv = re.compile(r'^(backbone\.)?features\.\d+\.(\d+\.)?(conv|block)\.\d+\.|^classifier\.\d+\.|'
                    r'^head\.(classification|regression)_head\.')
    if any(tv.match(k) for k in keys):
        return (' It looks like a torchvision checkpoint: convert it first with tools/convert_weights.py '
                '--arch ARCH SRC DST.')
    return ''


def check_state_dict(expected: Mapping[str, Any], given: Mapping[str, Any], source: str,
                     allow_missing: Sequence[str] = (), allow_unexpected: Sequence[str] = (),
                     target: str = 'the model') -> Dict[str, Any]:
    """Compare the tensors of a checkpoint (``given``) with those ``expected`` (a ``state_dict()``).

    Missing keys, unexpected keys and shape mismatches raise :class:`CheckpointMismatchError` naming ``source``
    and the keys, except missing (or other-shaped) keys matching a glob of ``allow_missing`` and unexpected keys
    matching ``allow_unexpected``. A checkpoint holding no tensors is always refused. Returns the entries of
    ``given`` to load (allowed extra or other-shaped entries removed).
    """
    tensors = {k: v for k, v in given.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        keys = _listed(sorted(map(str, given))) or 'none'
        raise CheckpointMismatchError(f'checkpoint {source} holds no tensors (keys: {keys})')
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong_shape = [k for k in expected if k in given and
                   (not isinstance(given[k], torch.Tensor) or tuple(given[k].shape) != tuple(expected[k].shape))]
    problems = []
    bad_missing = [k for k in missing if not _matches(k, allow_missing)]
    bad_unexpected = [k for k in unexpected if not _matches(k, allow_unexpected)]
    bad_shape = [k for k in wrong_shape if not _matches(k, allow_missing)]
    if bad_missing:
        problems.append(f'{len(bad_missing)} missing key(s): {_listed(bad_missing)}')
    if bad_unexpected:
        problems.append(f'{len(bad_unexpected)} unexpected key(s): {_listed(bad_unexpected)}')
    if bad_shape:
        def shape(v: Any) -> str:
            return str(tuple(v.shape)) if isinstance(v, torch.Tensor) else type(v).__name__
        items = [f'{k} {shape(given[k])} vs {tuple(expected[k].shape)}' for k in bad_shape]
        problems.append(f'{len(bad_shape)} shape mismatch(es) (checkpoint vs {target}): {_listed(items, 4)}')
    if problems:
        hint = _torchvision_hint(bad_unexpected)
        raise CheckpointMismatchError(
            f'checkpoint {source} does not fit {target}: ' + '; '.join(problems) + '.' + hint +
            " (Keys that may be missing are listed in the model config: init_cfg=dict(allow_missing=['head.*']).)")
    skip = set(unexpected) | set(wrong_shape)
    return OrderedDict((k, v) for k, v in given.items() if k not in skip)
