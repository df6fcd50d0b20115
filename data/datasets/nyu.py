"""NYU Depth v2 (Silberman et al., 2012) in its two common layouts.

* ``layout='h5'``: the HDF5 files of the sparse-to-dense release (Ma & Karaman, 2018) that FastDepth trains on:
  ``<data_root>/train/**/*.h5`` and ``<data_root>/val/**/*.h5``, each with ``rgb`` (3xHxW uint8) and ``depth``
  (HxW float, metres).
* ``layout='mat'``: the official labeled set ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5, read with
  h5py: ``images`` N x 3 x W x H uint8, ``depths`` N x W x H metres, stored transposed by MATLAB) with the
  standard 795 train / 654 test split of ``splits.mat`` (``trainNdxs``/``testNdxs``, 1-based).

A sample is ``{'img': HxWx3 uint8 RGB, 'gt_depth': HxW float32 metres (0 = invalid), 'meta': {...}}``. Files
with missing keys, wrong shapes or no valid depth raise ``ValueError`` naming the file (and frame).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import h5py
import numpy as np
from torch.utils.data import Dataset

from ..registry import DATASETS
from .sr_folder import build_pipeline


def _clean_depth(depth: np.ndarray, where: str) -> np.ndarray:
    depth = np.asarray(depth, np.float32)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(0)).astype(np.float32)
    if not (depth > 0).any():
        raise ValueError(f'{where}: the depth map has no valid pixel (all zero, negative or not finite)')
    return depth


def read_nyu_h5(path: Union[str, Path]) -> Tuple[np.ndarray, np.ndarray]:
    """(HxWx3 uint8 RGB, HxW float32 depth) of one sparse-to-dense ``.h5`` file, checked."""
    path = os.fspath(path)
    try:
        handle = h5py.File(path, 'r')
    except OSError as err:
        raise ValueError(f'{path}: cannot open as HDF5 ({err})') from err
    with handle:
        missing = [k for k in ('rgb', 'depth') if k not in handle]
        if missing:
            raise ValueError(f'{path}: missing key(s) {missing}; expected "rgb" (3xHxW uint8) and "depth" (HxW), '
                             f'found {sorted(handle.keys())}')
        rgb, depth = np.asarray(handle['rgb']), np.asarray(handle['depth'])
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ValueError(f'{path}: "rgb" has shape {rgb.shape}, expected 3xHxW')
    if depth.ndim != 2 or depth.shape != rgb.shape[1:]:
        raise ValueError(f'{path}: "depth" has shape {depth.shape}, expected {rgb.shape[1:]} (the rgb size)')
    if rgb.dtype != np.uint8:
        if rgb.max() <= 1.0:  # float RGB in [0, 1]
            rgb = rgb * 255.0
        rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb.transpose(1, 2, 0)), _clean_depth(depth, path)


def read_split_indices(splits_file: Union[str, Path], split: str) -> np.ndarray:
    """0-based frame indices of ``split`` ('train' or 'test'/'val') from ``splits.mat`` (MATLAB v5 or v7.3)."""
    splits_file = os.fspath(splits_file)
    key = 'trainNdxs' if split == 'train' else 'testNdxs'
    if not os.path.isfile(splits_file):
        raise FileNotFoundError(f'split file {splits_file} does not exist')
    try:
        from scipy.io import loadmat
        table = loadmat(splits_file)
    except (NotImplementedError, ValueError):  # v7.3 files are HDF5
        with h5py.File(splits_file, 'r') as handle:
            table = {k: np.asarray(handle[k]) for k in handle.keys()}
    if key not in table:
        raise ValueError(f'{splits_file}: missing key {key!r}; found {sorted(k for k in table if not k.startswith("__"))}')
    indices = np.asarray(table[key]).astype(np.int64).reshape(-1) - 1
    if indices.size == 0 or indices.min() < 0:
        raise ValueError(f'{splits_file}: {key} must hold 1-based frame numbers, got {indices[:5] + 1}')
    return indices


@DATASETS.register_module()
class NYUDepthV2(Dataset):
    """NYU Depth v2 frames as sample dicts.

    Args:
        data_root: the folder with ``train/`` and ``val/`` (h5 layout) or with the ``.mat`` files (mat layout).
        split: 'train' or 'val' (h5 folders); 'train' or 'test' ('val' is accepted as 'test') for the mat layout.
        layout: 'h5', 'mat' or 'auto' (mat when ``mat_file`` exists under ``data_root``).
        mat_file / splits_file: names (or paths) of the labeled ``.mat`` and of ``splits.mat``.
        pipeline: transforms (configs from ``data.TRANSFORMS`` or callables).
        max_samples: keep only the first N frames (quick runs).
    """

    def __init__(self, data_root: str, split: str = 'train', layout: str = 'auto',
                 mat_file: str = 'nyu_depth_v2_labeled.mat', splits_file: str = 'splits.mat',
                 pipeline: Optional[Sequence[Union[dict, Callable]]] = None, max_samples: Optional[int] = None) -> None:
        if split not in ('train', 'val', 'test'):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        root = Path(data_root)
        mat_path = Path(mat_file) if os.path.isabs(mat_file) else root / mat_file
        if layout == 'auto':
            layout = 'mat' if mat_path.is_file() else 'h5'
        if layout not in ('h5', 'mat'):
            raise ValueError(f"layout must be 'h5', 'mat' or 'auto', got {layout!r}")
        self.data_root, self.split, self.layout = str(root), split, layout
        self.pipeline = build_pipeline(pipeline)
        self.metainfo = dict(task='depth', dataset='NYU Depth v2', layout=layout)
        if layout == 'h5':
            folder = root / ('val' if split == 'test' else split)
            if not folder.is_dir():
                raise FileNotFoundError(f'NYU h5 folder {folder} does not exist (expected {root}/train and {root}/val)')
            self.files: List[str] = [str(p) for p in sorted(folder.rglob('*.h5'))]
            if not self.files:
                raise FileNotFoundError(f'no .h5 files under {folder}')
            self.indices = list(range(len(self.files)))
        else:
            if not mat_path.is_file():
                raise FileNotFoundError(f'NYU labeled file {mat_path} does not exist')
            splits_path = Path(splits_file) if os.path.isabs(splits_file) else root / splits_file
            self.mat_file = str(mat_path)
            self.indices = read_split_indices(splits_path, 'train' if split == 'train' else 'test').tolist()
            with self._open_mat() as handle:
                count = self._check_mat(handle)
            bad = [i + 1 for i in self.indices if i >= count]
            if bad:
                raise ValueError(f'{splits_path}: frame numbers {bad[:5]} exceed the {count} frames of {mat_path}')
        if max_samples is not None:
            self.indices = self.indices[:max_samples]

    # --- the official labeled .mat ------------------------------------------------------------------------------
    def _open_mat(self) -> h5py.File:
        try:
            return h5py.File(self.mat_file, 'r')
        except OSError as err:
            raise ValueError(f'{self.mat_file}: cannot open as HDF5 (MATLAB v7.3) ({err})') from err

    def _check_mat(self, handle: h5py.File) -> int:
        missing = [k for k in ('images', 'depths') if k not in handle]
        if missing:
            raise ValueError(f'{self.mat_file}: missing key(s) {missing}; found {sorted(handle.keys())}')
        images, depths = handle['images'], handle['depths']
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f'{self.mat_file}: "images" has shape {images.shape}, expected N x 3 x W x H')
        if depths.shape != (images.shape[0],) + images.shape[2:]:
            raise ValueError(f'{self.mat_file}: "depths" has shape {depths.shape}, expected '
                             f'{(images.shape[0],) + images.shape[2:]}')
        return images.shape[0]

    def _read_mat(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        with self._open_mat() as handle:
            image = np.asarray(handle['images'][index])   # 3 x W x H (MATLAB column-major)
            depth = np.asarray(handle['depths'][index])   # W x H
        return (np.ascontiguousarray(image.transpose(2, 1, 0)),
                _clean_depth(depth.T, f'{self.mat_file} frame {index + 1}'))

    # --- Dataset ------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        frame = self.indices[index]
        if self.layout == 'h5':
            file = self.files[frame]
            image, depth = read_nyu_h5(file)
            # e.g. val/official/00001.h5 -> val_official_00001 (usable as a file stem)
            img_id = os.path.relpath(file, self.data_root).rsplit('.', 1)[0].replace(os.sep, '_')
        else:
            file = self.mat_file
            image, depth = self._read_mat(frame)
            img_id = f'{frame + 1:04d}'
        sample = dict(img=image, gt_depth=depth,
                      meta=dict(img_id=img_id, file=file, ori_shape=image.shape[:2], img_shape=image.shape[:2]))
        for transform in self.pipeline:
            sample = transform(sample)
        return sample
