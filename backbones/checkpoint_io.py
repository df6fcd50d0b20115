"""Reading checkpoints without running code: ``torch.load(weights_only=True)`` plus an allow-list.

Our checkpoints (mmengine Runner's, and the converted torchvision ones) hold tensors, plain containers, numpy
arrays and mmengine's ``HistoryBuffer`` (log history, for resume). Anything else is refused: a downloaded
checkpoint must not be able to execute code when it is opened (DESIGN.md, Checkpoints and weights).
"""
from __future__ import annotations

import os
import pickle
import re
from typing import Any, List

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
