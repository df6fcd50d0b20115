"""Entry-point helpers for tools/: bad input ends with one clear line instead of a traceback, found before the
Runner starts (and prints its environment dump)."""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple

from backbones.checkpoint_io import UnsafeCheckpointError

_PATH_KEY = re.compile(r'(^|_)(file|root|dir)$|^(pretrained|checkpoint)$')  # entries naming files or folders


def run_cli(main: Callable[[], object]) -> None:
    """Run ``main``; missing files, refused or unreadable checkpoints and invalid data print ``error: ...`` and
    exit with status 2. Set ``MOBILEVISION_DEBUG=1`` to see the traceback."""
    try:
        main()
    except (FileNotFoundError, IsADirectoryError, PermissionError, UnsafeCheckpointError, ValueError, KeyError,
            RuntimeError) as err:
        if os.environ.get('MOBILEVISION_DEBUG'):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        if isinstance(err, OSError) and err.filename and str(err.filename) not in str(message):
            message = f'{err.filename}: {err.strerror or message}'
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)


def require_file(path: Optional[str], what: str) -> str:
    """``path`` when it is an existing file; ``FileNotFoundError`` naming ``what`` and the path otherwise."""
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f'{what} {path} does not exist')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} {path} is not a file')
    if not os.access(path, os.R_OK):
        raise PermissionError(f'{what} {path} is not readable')
    return path


def output_file(path: str, what: str = '--output') -> str:
    """``path`` when a file can be written there: not an existing folder (found before any work, instead of an
    ``IsADirectoryError`` once the model is exported)."""
    if os.path.isdir(path):
        raise IsADirectoryError(f'{what} {path} is a folder; give the file to write')
    return path


def _path_entries(node: Any, where: str) -> Iterator[Tuple[str, str]]:
    """``(dotted key, value)`` of every string entry named ``*_file`` / ``*_root`` / ``*_dir`` (or ``file``...),
    ``pretrained`` or ``checkpoint``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f'{where}.{key}' if where else str(key)
            if isinstance(value, str) and _PATH_KEY.search(str(key)):
                yield here, value
            else:
                yield from _path_entries(value, here)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _path_entries(value, f'{where}[{i}]')


def check_config_paths(cfg: Mapping, sections: Sequence[str], config_name: str = 'the config') -> None:
    """Every path of ``cfg[section]`` (``ann_file``, ``data_root``, ``img_dir``, ``pretrained``...) must exist.

    Checked before the Runner is built, so a missing dataset is one ``error:`` line naming the config entry and
    the path, not a traceback after mmengine's environment dump.
    """
    for section in sections:
        for key, value in _path_entries(cfg.get(section) or {}, section):
            if not os.path.exists(value):
                raise FileNotFoundError(f'{config_name}: {key} = {os.path.normpath(value)} does not exist')


def json_safe(value: Any) -> Any:
    """``value`` with NumPy/torch numbers turned into Python ones and NaN/inf into ``None`` (valid JSON)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, 'tolist') and not isinstance(value, (str, bytes)):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def group_per_class(metrics: Mapping[str, Any], classes: Sequence[str]) -> Dict[str, Any]:
    """Nest per-class entries under their metric with the class names as keys.

    ``{'mIoU': .., 'IoU.cat': .., 'IoU.dog': ..}`` becomes ``{'mIoU': .., 'IoU': {'cat': .., 'dog': ..}}``;
    ``pascal_voc/AP_cat`` becomes ``pascal_voc/AP: {'cat': ..}``. Other keys stay as they are.
    """
    names = sorted((str(c) for c in classes), key=len, reverse=True)  # longest first: 'person' before 'son'

    def split(key: str) -> Optional[Tuple[str, str]]:
        for name in names:
            for sep in ('.', '_', '/'):
                if key.endswith(sep + name) and len(key) > len(name) + 1:
                    return key[:-len(name) - 1], name
        return None
    out: Dict[str, Any] = {}
    for key, value in metrics.items():
        parts = split(key)
        if parts and parts[0] not in metrics and isinstance(out.get(parts[0], {}), dict):
            out.setdefault(parts[0], {})[parts[1]] = value
        else:
            out[key] = value
    return out


def input_shape(cfg: Mapping, shape: Optional[Sequence[int]], config_name: str, channels: bool = True) -> tuple:
    """The network input shape of a tool: ``--shape`` if given, else the config's ``benchmark_shape``.

    A given ``--shape`` must be positive and, where the config has a ``benchmark_shape``, have as many numbers and
    the same channel count (``--shape 224 224`` for a ``3 224 224`` model is an error, not a 2-D input).
    ``channels=False`` where the shape is a photo's for the predict path (ESPCN's network takes luma, its predict
    path RGB photos), not the network's input."""
    reference = tuple(cfg.get('benchmark_shape') or ())
    if not shape:
        if not reference:
            raise ValueError(f'no --shape given and the config {config_name} has no benchmark_shape')
        return reference
    shape = tuple(shape)
    if any(int(n) < 1 for n in shape):
        raise ValueError(f'--shape {" ".join(map(str, shape))}: every size must be >= 1')
    if reference and len(shape) != len(reference):
        raise ValueError(f'--shape {" ".join(map(str, shape))} has {len(shape)} numbers; the config {config_name} '
                         f'takes {len(reference)} (channels first, without batch, like its benchmark_shape '
                         f'{" ".join(map(str, reference))})')
    if channels and reference and shape[0] != reference[0]:
        raise ValueError(f'--shape {" ".join(map(str, shape))} has {shape[0]} channels; the config {config_name} '
                         f'takes {reference[0]} (its benchmark_shape is {" ".join(map(str, reference))})')
    return shape


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number >= {low}, got {text!r}') from None
    if value < low:
        raise argparse.ArgumentTypeError(f'must be >= {low}, got {value}')
    return value


def positive_int(text: str) -> int:
    """``argparse`` type of counts that must be >= 1 (``--threads``, ``--runs``...): ``--threads 0`` is a usage
    error (exit 2) instead of a silent default."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """``argparse`` type of counts that may be 0 (``--warmup``)."""
    return _int_at_least(text, 0)


def require_checkpoint(path: Optional[str], what: str = 'checkpoint', onnx_option: Optional[str] = None) -> str:
    """``require_file`` for a PyTorch checkpoint; an ``.onnx`` file is refused by name (``torch.load`` would fail on
    it with a decoding error that says nothing), pointing to ``onnx_option`` where the tool has one."""
    require_file(path, what)
    if str(path).lower().endswith('.onnx'):
        where = f'; run an ONNX file with {onnx_option}' if onnx_option else ''
        raise ValueError(f'{what} {path} is an ONNX file, not a PyTorch checkpoint{where}')
    return path
