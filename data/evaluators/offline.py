"""Offline scorers for ``tools/evaluate.py``: each reads prediction files and ground truth from disk.

A scorer is a class registered in ``data.OFFLINE_SCORERS`` under the ``--metric`` name, with
``add_arguments(parser)`` (its own options) and ``score(args) -> dict`` (the metrics, JSON-serialisable).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ..io import IMAGE_SUFFIXES, read_rgb, unique_names
from ..registry import OFFLINE_SCORERS
from ..transforms.resize import mod_crop
from .image_quality import score_pair


def match_by_stem(pred_dir: str, gt_dir: str, suffixes: Tuple[str, ...]) -> List[Tuple[Path, Path]]:
    """Pairs (prediction, ground truth): a prediction's stem is the ground truth's output name, the name
    ``tools/infer.py`` gives the same file (``data.io.unique_names``: the stem, or the whole name where stems collide,
    so ``photo.jpg`` and ``photo.png`` are scored against ``photo.jpg.png`` and ``photo.png.png``). Errors name what is
    missing or ambiguous; nothing is dropped silently."""
    def files(folder: str, what: str) -> List[Path]:
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f'{what} folder {folder} ' + ('is not a folder' if root.exists() else
                                                                  'does not exist'))
        return [p for p in sorted(root.iterdir()) if p.name.lower().endswith(suffixes)]
    gt_files = files(gt_dir, 'ground-truth')
    if not gt_files:
        raise FileNotFoundError(f'no ground-truth files ({", ".join(suffixes)}) in {gt_dir}')
    gts = dict(zip(unique_names(gt_files), gt_files))
    preds: Dict[str, Path] = {}
    for path in files(pred_dir, 'prediction'):
        if path.stem in preds:
            raise ValueError(f'two predictions for {path.stem!r} in {pred_dir}: {preds[path.stem].name} and '
                             f'{path.name}; keep one')
        preds[path.stem] = path
    missing = sorted(set(gts) - set(preds))
    if missing:
        raise FileNotFoundError(f'{len(missing)} ground-truth file(s) have no prediction in {pred_dir}: '
                                f'{", ".join(missing[:5])}{" ..." if len(missing) > 5 else ""}')
    return [(preds[name], gts[name]) for name in sorted(gts)]


def read_npy(path: Path, what: str = 'array') -> np.ndarray:
    """A numeric ``.npy`` array; ``ValueError`` naming ``path`` for an empty, truncated, pickled or non-numpy file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{what} file {path} does not exist')
    if path.stat().st_size == 0:
        raise ValueError(f'{what} file {path} is empty (0 bytes)')
    with open(path, 'rb') as f:
        if f.read(6) != b'\x93NUMPY':  # the .npy magic string (NEP 1)
            raise ValueError(f'{what} file {path} is not a .npy array (no NumPy header)')
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        if 'pickle' in str(err):  # object arrays need pickling, which could run code: never a depth map
            raise ValueError(f'{what} file {path} holds Python objects, not a numeric array') from None
        raise ValueError(f'{what} file {path} is not a .npy array: {err}') from None
    except (OSError, EOFError) as err:
        raise ValueError(f'{what} file {path} is not a .npy array (or is truncated): {err}') from None
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f'{what} file {path} is not a numeric array (dtype {getattr(array, "dtype", None)})')
    return array


def squeeze_to(pred: np.ndarray, shape: Tuple[int, ...], where: str) -> np.ndarray:
    """``pred`` without its size-1 axes when that gives ``shape`` (a 1x1xHxW network output for an HxW map);
    ``ValueError`` naming ``where`` for a real mismatch."""
    if pred.shape == tuple(shape):
        return pred
    if tuple(d for d in pred.shape if d != 1) == tuple(d for d in shape if d != 1):
        return pred.reshape(shape)
    raise ValueError(f'{where}: prediction of shape {pred.shape} does not match the ground truth {tuple(shape)} '
                     f'(size-1 axes aside)')


@OFFLINE_SCORERS.register_module(name='psnr')
class PSNRScorer:
    """PSNR/SSIM of SR output images against HR images (matched by stem), luma by default."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--pred-dir', required=True, help='folder of super-resolved images')
        parser.add_argument('--gt-dir', required=True, help='folder of high-resolution images')
        parser.add_argument('--scale', type=int, required=True, help='SR factor: pixels cropped from each border')
        parser.add_argument('--color', choices=('y', 'rgb'), default='y', help='score the luma (default) or RGB')

    @staticmethod
    def score(args: argparse.Namespace) -> dict:
        per_image = {}
        for pred_path, gt_path in match_by_stem(args.pred_dir, args.gt_dir, IMAGE_SUFFIXES):
            pred, gt = read_rgb(pred_path), mod_crop(read_rgb(gt_path), args.scale)
            if pred.shape != gt.shape:
                raise ValueError(f'{pred_path}: size {pred.shape[:2]} differs from the mod-cropped ground truth '
                                 f'{gt_path} {gt.shape[:2]}')
            per_image[pred_path.stem] = score_pair(pred, gt, args.scale, args.color)
        return dict(PSNR=float(np.mean([r['psnr'] for r in per_image.values()])),
                    SSIM=float(np.mean([r['ssim'] for r in per_image.values()])),
                    num_images=len(per_image), per_image=per_image)
