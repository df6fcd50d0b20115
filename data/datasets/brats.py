"""BraTS brain-tumour cases as NIfTI (Menze et al., 2015; Bakas et al., 2017/2018): four MRI modalities and a label map.

A case is a folder holding ``<case>_t1``, ``_t1ce``, ``_t2``, ``_flair`` and (for training) ``_seg`` files
(``.nii.gz`` or ``.nii``; the BraTS 2023 names ``-t1n``, ``-t1c``, ``-t2w``, ``-t2f``, ``-seg`` are accepted too).
Labels: 0 background, 1 necrotic/non-enhancing core (NCR), 2 peritumoral edema (ED), 4 enhancing tumour (ET);
BraTS 2023 writes ET as 3, which is read as 4. Evaluated regions: ET = {4}, TC = {1, 4}, WT = {1, 2, 4}.

Arrays follow the sample vocabulary: ``img`` float32 ``C x D x H x W`` and ``gt_seg`` int64 ``D x H x W`` where
(D, H, W) are the NIfTI voxel axes (k, j, i) reversed, so ``D`` runs along the third (axial for BraTS) axis.
``meta['affine']`` is the file's voxel-to-world affine for (i, j, k) and ``meta['spacing']`` the voxel size in
mm in (D, H, W) order. Each modality is z-scored over the brain mask (voxels where any modality is non-zero; BraTS
volumes are skull-stripped), background set to 0 (Isensee et al., 2018, nnU-Net BraTS preprocessing).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from torch.utils.data import Dataset

from ..registry import DATASETS, TRANSFORMS

MODALITIES: Tuple[str, ...] = ('t1', 't1ce', 't2', 'flair')
_ALIASES: Dict[str, Tuple[str, ...]] = {'t1': ('t1', 't1n'), 't1ce': ('t1ce', 't1c'), 't2': ('t2', 't2w'),
                                        'flair': ('flair', 't2f'), 'seg': ('seg',)}
BRATS_LABELS = (0, 1, 2, 4)
NIFTI_SUFFIXES = ('.nii.gz', '.nii')


class VolumeArray(np.ndarray):
    """A float32 ``C x D x H x W`` array that carries ``affine``, ``spacing`` and ``case`` (what ``read_input``
    returns, so the geometry reaches the NIfTI writer through ``tools/infer.py``)."""

    def __new__(cls, array: np.ndarray, affine: np.ndarray, spacing: Sequence[float], case: str = ''):
        obj = np.asarray(array).view(cls)
        obj.affine, obj.spacing, obj.case = np.asarray(affine, np.float64), tuple(float(s) for s in spacing), case
        return obj

    def __array_finalize__(self, obj) -> None:
        self.affine = getattr(obj, 'affine', None)
        self.spacing = getattr(obj, 'spacing', None)
        self.case = getattr(obj, 'case', '')


def strip_nifti_suffix(name: str) -> str:
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return name


def case_name_of(path: Union[str, Path]) -> str:
    """``BraTS20_Training_001`` from ``.../BraTS20_Training_001_seg.nii.gz``, a case folder or a prediction file."""
    name = strip_nifti_suffix(Path(path).name)
    return re.sub(r'[-_](seg|t1|t1ce|t2|flair|t1n|t1c|t2w|t2f)$', '', name, flags=re.IGNORECASE)


def find_case_files(case_dir: Union[str, Path], require_seg: bool = False) -> Dict[str, Optional[str]]:
    """Paths of the four modalities and the label map (``None`` when absent) of one case folder."""
    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        raise FileNotFoundError(f'BraTS case folder {case_dir} does not exist')
    files = [p for p in sorted(case_dir.iterdir()) if p.name.lower().endswith(NIFTI_SUFFIXES)]
    found: Dict[str, Optional[str]] = {}
    for key, aliases in _ALIASES.items():
        matches = [p for p in files if re.search(r'[-_](%s)$' % '|'.join(aliases),
                                                 strip_nifti_suffix(p.name), re.IGNORECASE)]
        if len(matches) > 1:
            raise ValueError(f'case {case_dir.name}: several {key} files: {[p.name for p in matches]}')
        found[key] = str(matches[0]) if matches else None
    missing = [m for m in MODALITIES if found[m] is None]
    if missing or (require_seg and found['seg'] is None):
        missing += ['seg'] if require_seg and found['seg'] is None else []
        raise FileNotFoundError(f'case {case_dir.name}: missing {", ".join(missing)} file(s) in {case_dir} '
                                f'(expected <case>_{{t1,t1ce,t2,flair,seg}}.nii.gz)')
    return found


def is_case_dir(path: Union[str, Path]) -> bool:
    try:
        find_case_files(path)
        return True
    except (FileNotFoundError, ValueError):
        return False


def read_nifti(path: Union[str, Path], canonical: bool = False):
    """``(array (D, H, W) = voxel axes (k, j, i), affine 4x4, spacing (D, H, W) in mm)`` of a 3D NIfTI file.

    ``canonical=True`` first reorients to the closest RAS+ orientation (nibabel ``as_closest_canonical``); the
    returned affine is then the reoriented one, so positions in world space stay right either way.
    """
    import nibabel as nib
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'NIfTI file {path} does not exist')
    try:
        image = nib.load(path)
        if canonical:
            image = nib.as_closest_canonical(image)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises several types for corrupt files
        raise ValueError(f'cannot read NIfTI file {path}: {error}') from error
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f'NIfTI file {path}: expected a 3D volume, got shape {data.shape}')
    affine = np.asarray(image.affine, np.float64)
    spacing_ijk = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return np.ascontiguousarray(data.transpose(2, 1, 0)), affine, tuple(float(s) for s in spacing_ijk[::-1])


def to_nifti_order(volume: np.ndarray) -> np.ndarray:
    """(D, H, W) array back to the NIfTI voxel order (i, j, k)."""
    return np.ascontiguousarray(np.asarray(volume).transpose(2, 1, 0))


def write_nifti(path: Union[str, Path], volume: np.ndarray, affine: np.ndarray, dtype=np.uint8) -> str:
    """Write a (D, H, W) array with ``affine`` (NIfTI-1, ``.nii.gz`` compresses)."""
    import nibabel as nib
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image = nib.Nifti1Image(to_nifti_order(volume).astype(dtype), np.asarray(affine, np.float64))
    image.set_qform(np.asarray(affine, np.float64), code=1)
    image.set_sform(np.asarray(affine, np.float64), code=1)
    nib.save(image, path)
    return path


def check_labels(seg: np.ndarray, case: str) -> np.ndarray:
    """BraTS labels {0, 1, 2, 4} as int64 (3, the BraTS 2023 ET label, becomes 4); anything else is an error."""
    if not np.all(np.isfinite(seg)) or not np.all(np.equal(np.mod(seg, 1), 0)):
        raise ValueError(f'case {case}: the label map holds non-integer values')
    seg = seg.astype(np.int64)
    values = set(np.unique(seg).tolist())
    unknown = sorted(values - {0, 1, 2, 3, 4})
    if unknown:
        raise ValueError(f'case {case}: unknown label(s) {unknown} in the label map; BraTS labels are 0, 1, 2, 4 '
                         f'(3 accepted for ET)')
    seg[seg == 3] = 4
    return seg


def zscore_in_mask(volume: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Per channel ``(x - mean) / std`` over ``mask`` (default: voxels where any channel is non-zero); 0 outside."""
    volume = np.asarray(volume, np.float32)
    if mask is None:
        mask = np.any(volume != 0, axis=0)
    out = np.zeros_like(volume)
    if not mask.any():
        return out
    for c in range(volume.shape[0]):
        values = volume[c][mask]
        std = float(values.std())
        out[c][mask] = (values - values.mean()) / (std if std > 1e-8 else 1.0)
    return out


def load_case(case_dir: Union[str, Path], with_seg: bool = True, normalize: bool = True,
              canonical: bool = False) -> dict:
    """One case as a sample dict (``img``, ``gt_seg`` when present, ``meta``); errors name the case."""
    case_dir = Path(case_dir)
    case = case_dir.name
    files = find_case_files(case_dir, require_seg=with_seg)
    volumes, geometry = [], None
    for modality in MODALITIES:
        data, affine, spacing = read_nifti(files[modality], canonical)
        if geometry is None:
            geometry = (data.shape, affine, spacing, modality)
        elif data.shape != geometry[0]:
            raise ValueError(f'case {case}: {modality} has shape {data.shape[::-1]} but {geometry[3]} has '
                             f'{geometry[0][::-1]} (NIfTI i, j, k order)')
        elif not np.allclose(affine, geometry[1], atol=1e-3):
            raise ValueError(f'case {case}: {modality} and {geometry[3]} have different affines (not co-registered)')
        volumes.append(data.astype(np.float32))
    shape, affine, spacing, _ = geometry
    img = np.stack(volumes)
    if normalize:
        img = zscore_in_mask(img)
    sample = dict(img=VolumeArray(img, affine, spacing, case),
                  meta=dict(img_id=case, file=str(case_dir), ori_shape=tuple(shape), affine=affine,
                            spacing=spacing))
    if files['seg'] is not None and with_seg:
        seg, seg_affine, _ = read_nifti(files['seg'], canonical)
        if seg.shape != shape:
            raise ValueError(f'case {case}: label map shape {seg.shape[::-1]} differs from the images '
                             f'{shape[::-1]} (NIfTI i, j, k order)')
        sample['gt_seg'] = check_labels(seg, case)
    return sample


def load_volume_file(path: Union[str, Path], normalize: bool = True, canonical: bool = False) -> dict:
    """A single NIfTI input: a 4D file with the four modalities on the last axis, or one modality file of a case
    folder (the other three are read from beside it)."""
    import nibabel as nib
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'NIfTI file {path} does not exist')
    header_shape = nib.load(os.fspath(path)).shape
    if len(header_shape) == 4 and header_shape[3] == len(MODALITIES):
        image = nib.load(os.fspath(path))
        if canonical:
            image = nib.as_closest_canonical(image)
        data = np.asarray(image.dataobj, np.float32).transpose(3, 2, 1, 0)
        affine = np.asarray(image.affine, np.float64)
        spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0))[::-1])
        img = zscore_in_mask(data) if normalize else np.ascontiguousarray(data)
        case = case_name_of(path)
        return dict(img=VolumeArray(img, affine, spacing, case),
                    meta=dict(img_id=case, file=str(path), ori_shape=data.shape[1:], affine=affine,
                              spacing=spacing))
    if case_name_of(path) != strip_nifti_suffix(path.name) and is_case_dir(path.parent):
        return load_case(path.parent, with_seg=False, normalize=normalize, canonical=canonical)
    raise ValueError(f'{path}: expected a 4D NIfTI with the {len(MODALITIES)} modalities '
                     f'({", ".join(MODALITIES)}) on the last axis, or one modality file of a BraTS case folder; '
                     f'got shape {header_shape}')


def find_cases(data_root: Union[str, Path]) -> List[Path]:
    """Case folders directly under ``data_root`` (the BraTS training/validation layout)."""
    root = Path(data_root)
    if not root.is_dir():
        raise FileNotFoundError(f'BraTS data root {root} does not exist')
    return [p for p in sorted(root.iterdir()) if p.is_dir() and any(
        f.name.lower().endswith(NIFTI_SUFFIXES) for f in p.iterdir())]


def split_cases(case_ids: Sequence[str], val_fraction: float = 0.2, seed: int = 0) -> Dict[str, List[str]]:
    """Deterministic held-out split: ``{'train': [...], 'val': [...]}``, both sorted, disjoint, covering the ids.

    The ids are sorted, shuffled by NumPy's ``default_rng(seed)`` and the first ``round(val_fraction * n)`` (at
    least 1 when there are two or more cases) become validation cases: the same ids give the same split on every
    machine and run, whatever order the file system lists them in (80/20 by default, the usual BraTS hold-out).
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got {val_fraction}')
    ids = sorted(set(case_ids))
    if len(ids) != len(case_ids):
        dupes = sorted({c for c in case_ids if list(case_ids).count(c) > 1})
        raise ValueError(f'duplicate case ids: {dupes[:5]}')
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = min(len(ids) - 1, max(1, int(round(val_fraction * len(ids))))) if len(ids) > 1 else 0
    val = {ids[i] for i in order[:n_val]}
    return dict(train=[c for c in ids if c not in val], val=sorted(val))


def read_case_list(cases: Union[str, Sequence[str]]) -> List[str]:
    """Case names from a list or a text file (one a line, blank lines skipped)."""
    if isinstance(cases, (str, os.PathLike)):
        if not os.path.isfile(cases):
            raise FileNotFoundError(f'BraTS case list {cases} does not exist')
        with open(cases) as f:
            return [line.strip() for line in f if line.strip()]
    return [str(c) for c in cases]


def resolve_cases(data_root: Union[str, Path], cases: Union[None, str, Sequence[str]] = None,
                  split: Optional[str] = None, val_fraction: float = 0.2, split_seed: int = 0) -> List[str]:
    """The case names a dataset reads: ``cases`` (a list or a list file) when given, else the ``split`` part
    ('train' or 'val') of :func:`split_cases` over the case folders of ``data_root``, else every case folder."""
    if cases is not None:
        return read_case_list(cases)
    names = [p.name for p in find_cases(data_root)]
    if split is None:
        return names
    if split not in ('train', 'val'):
        raise ValueError(f"split must be 'train', 'val' or None, got {split!r}")
    return split_cases(names, val_fraction, split_seed)[split]


def write_split(data_root: Union[str, Path], out_dir: Union[str, Path], val_fraction: float = 0.2,
                split_seed: int = 0) -> Dict[str, str]:
    """Write the held-out split of ``data_root``'s case folders as ``out_dir/{train,val}.txt`` (one case a line),
    to record it or to pass the files as ``train_cases`` / ``val_cases``; returns the two paths."""
    parts = split_cases([p.name for p in find_cases(data_root)], val_fraction, split_seed)
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for name, cases in parts.items():
        paths[name] = os.path.join(os.fspath(out_dir), f'{name}.txt')
        with open(paths[name], 'w') as f:
            f.write(''.join(f'{c}\n' for c in cases))
    return paths


def check_disjoint(train_cases: Sequence[str], val_cases: Sequence[str], where: str = '') -> None:
    """Refuse validation cases that are also training cases (validating on training data), naming them."""
    overlap = sorted(set(train_cases) & set(val_cases))
    if overlap:
        shown = ', '.join(overlap[:10]) + (f' and {len(overlap) - 10} more' if len(overlap) > 10 else '')
        raise ValueError(f'{where}{len(overlap)} BraTS case(s) are in both the training and the validation list: '
                         f'{shown}; give disjoint lists (or leave both None for the held-out split)')


def build_pipeline(pipeline: Optional[Sequence[Union[dict, Callable]]]) -> List[Callable]:
    return [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in (pipeline or [])]


class _VolumeDataset(Dataset):
    """Shared logic: ``num_samples`` sets the epoch length (random patches), the pipeline runs on a copy."""

    def __init__(self, pipeline: Optional[Sequence] = None, num_samples: Optional[int] = None) -> None:
        self.pipeline = build_pipeline(pipeline)
        self.num_samples = num_samples
        self.metainfo = dict(task='volumetric', labels=BRATS_LABELS, regions=('WT', 'TC', 'ET'))

    def num_cases(self) -> int:
        raise NotImplementedError

    def case(self, index: int) -> dict:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.num_samples or self.num_cases()

    def __getitem__(self, index: int) -> dict:
        sample = self.case(index % self.num_cases())
        sample = dict(sample, meta=dict(sample['meta']))
        for transform in self.pipeline:
            sample = transform(sample)
        return sample


@DATASETS.register_module()
class BraTSDataset(_VolumeDataset):
    """Case folders under ``data_root`` (or the names listed in ``cases``, a list or a text file, one a line).

    ``split='train'`` / ``'val'`` (with ``cases=None``) reads one part of the deterministic held-out split of the
    case folders (:func:`split_cases`: ``val_fraction``, ``split_seed``). ``other_cases`` names the cases of the
    other part the same way (None: the other part of the split, or nothing without ``split``): any case in both is
    an error naming it, so a config cannot validate on its training cases. ``cache=True`` keeps loaded cases in
    memory (a BraTS case is about 140 MB as float32).
    """

    def __init__(self, data_root: str, pipeline: Optional[Sequence] = None, cases: Union[None, str, Sequence[str]] = None,
                 with_seg: bool = True, num_samples: Optional[int] = None, cache: bool = False,
                 canonical: bool = False, split: Optional[str] = None, val_fraction: float = 0.2,
                 split_seed: int = 0, other_cases: Union[None, str, Sequence[str]] = None) -> None:
        super().__init__(pipeline, num_samples)
        root = Path(data_root)
        names = resolve_cases(root, cases, split, val_fraction, split_seed)
        if split is not None or other_cases is not None:
            other_split = {'train': 'val', 'val': 'train'}.get(split or '')
            others = (resolve_cases(root, other_cases, other_split, val_fraction, split_seed)
                      if other_cases is not None or other_split else [])
            train, val = (others, names) if split == 'val' else (names, others)
            check_disjoint(train, val, where=f'{data_root}: ')
        self.split, self.case_names = split, names
        self.case_dirs = [root / c for c in names]
        missing = [str(p) for p in self.case_dirs if not p.is_dir()]
        if missing:
            raise FileNotFoundError(f'{len(missing)} listed BraTS case(s) not found: {missing[:5]}')
        if not self.case_dirs:
            raise FileNotFoundError(f'no BraTS case folders in {data_root}')
        self.with_seg, self.cache, self.canonical = with_seg, cache, canonical
        self._cache: Dict[int, dict] = {}

    def num_cases(self) -> int:
        return len(self.case_dirs)

    def case(self, index: int) -> dict:
        if index in self._cache:
            return self._cache[index]
        sample = load_case(self.case_dirs[index], with_seg=self.with_seg, canonical=self.canonical)
        if self.cache:
            self._cache[index] = sample
        return sample


def _ellipsoid(shape: Sequence[int], center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing='ij'))
    offsets = (grid - center[:, None, None, None]) / radii[:, None, None, None]
    return np.sqrt((offsets ** 2).sum(axis=0))


def make_synthetic_case(shape: Sequence[int] = (32, 32, 32), seed: int = 0, noise: float = 0.3) -> dict:
    """A four-modality "brain" (an ellipsoid) with one tumour-like blob: edema (2) around a core whose rim
    enhances (4) around necrosis (1). The modalities differ as in BraTS: FLAIR/T2 bright over the whole tumour,
    T1ce bright on the enhancing rim, T1 dark in the core; plus Gaussian noise and a smooth bias field."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    size = np.array(shape, np.float32)
    brain = _ellipsoid(shape, size / 2 - 0.5, size * 0.45) <= 1.0
    center = size / 2 + rng.uniform(-0.15, 0.15, 3) * size
    radius = rng.uniform(0.13, 0.22) * size.min() * rng.uniform(0.8, 1.2, 3)
    r = _ellipsoid(shape, center, radius)
    seg = np.zeros(shape, np.int64)
    seg[r <= 1.0] = 2
    seg[r <= 0.6] = 4
    seg[r <= 0.35] = 1
    seg[~brain] = 0
    tissue = rng.normal(0, 0.15, shape).astype(np.float32)
    means = {'t1': {0: 1.0, 2: 0.9, 4: 0.8, 1: 0.5}, 't1ce': {0: 1.0, 2: 1.0, 4: 2.0, 1: 0.6},
             't2': {0: 1.0, 2: 1.8, 4: 1.6, 1: 2.0}, 'flair': {0: 1.0, 2: 2.0, 4: 1.7, 1: 1.5}}
    bias = 1 + 0.1 * np.sin(np.linspace(0, np.pi, shape[0]))[:, None, None]
    channels = []
    for modality in MODALITIES:
        vol = np.zeros(shape, np.float32)
        for label, mean in means[modality].items():
            vol[seg == label] = mean
        vol = (vol + tissue + rng.normal(0, noise, shape)) * bias
        vol[~brain] = 0
        channels.append(vol.astype(np.float32))
    img = zscore_in_mask(np.stack(channels), brain)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    name = f'synthetic_{seed:04d}'
    return dict(img=VolumeArray(img, affine, (1.0, 1.0, 1.0), name), gt_seg=seg,
                meta=dict(img_id=name, file=None, ori_shape=shape, affine=affine, spacing=(1.0, 1.0, 1.0)),
                raw=np.stack(channels))


def write_synthetic_case(folder: Union[str, Path], shape: Sequence[int] = (32, 32, 32), seed: int = 0,
                         with_seg: bool = True) -> Path:
    """Write ``make_synthetic_case`` as a BraTS case folder ``folder/synthetic_<seed>`` (raw intensities)."""
    case = make_synthetic_case(shape, seed)
    name = case['meta']['img_id']
    case_dir = Path(folder) / name
    for modality, volume in zip(MODALITIES, case['raw']):
        write_nifti(case_dir / f'{name}_{modality}.nii.gz', volume, case['meta']['affine'], np.float32)
    if with_seg:
        write_nifti(case_dir / f'{name}_seg.nii.gz', case['gt_seg'], case['meta']['affine'], np.uint8)
    return case_dir


@DATASETS.register_module()
class SyntheticBraTS(_VolumeDataset):
    """``num_cases`` synthetic cases (``make_synthetic_case`` with seeds ``seed + i``), for tests and smoke runs."""

    def __init__(self, num_cases: int = 8, shape: Sequence[int] = (32, 32, 32), seed: int = 0,
                 pipeline: Optional[Sequence] = None, num_samples: Optional[int] = None) -> None:
        super().__init__(pipeline, num_samples)
        if num_cases < 1:
            raise ValueError(f'num_cases must be >= 1, got {num_cases}')
        self.cases = []
        for i in range(num_cases):
            case = make_synthetic_case(shape, seed + i)
            case.pop('raw')
            self.cases.append(case)

    def num_cases(self) -> int:
        return len(self.cases)

    def case(self, index: int) -> dict:
        return self.cases[index]
