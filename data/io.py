"""Reading and writing images with errors that name the file; output names and the inputs no writer may touch."""
from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, List, Sequence, Set, Tuple, Union

import cv2
import numpy as np

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


def read_rgb(path: Union[str, Path]) -> np.ndarray:
    """An HxWx3 uint8 RGB image; ``FileNotFoundError``/``ValueError`` naming ``path`` otherwise."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'image file {path} does not exist')
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f'cannot decode image {path}: the file is empty, truncated or not an image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def as_rgb_uint8(image: np.ndarray, what: str = 'image') -> np.ndarray:
    """The one input rule of the image tasks: an HxWx3 RGB array, uint8 (0-255) as is, or float in [0, 1]
    (quantised to uint8, ``round(x * 255)``, the form every task's preprocessor takes). A float image outside
    [0, 1] (e.g. 0-255 floats), NaN, another dtype or another shape is a ``ValueError`` naming ``what``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'{what}: expected an HxWx3 RGB image, got an array of shape {image.shape}')
    if image.dtype == np.uint8:
        return image
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f'{what}: expected a uint8 (0-255) or float (0-1) image, got dtype {image.dtype}')
    if image.size and not np.isfinite(image).all():
        raise ValueError(f'{what}: the float image holds NaN or infinite values')
    low, high = (float(image.min()), float(image.max())) if image.size else (0.0, 0.0)
    if low < 0.0 or high > 1.0:
        raise ValueError(f'{what}: a float image must lie in [0, 1], got values in [{low:g}, {high:g}]; '
                         f'divide 0-255 floats by 255 or pass uint8')
    return np.round(image.astype(np.float64) * 255.0).astype(np.uint8)


# --- files a run must not write over ---------------------------------------------------------------------------
_PROTECTED: Set[Tuple[int, int]] = set()  # (device, inode) of the inputs of the running tool


def _identity(path: Union[str, Path]) -> Tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


@contextlib.contextmanager
def protected_files(paths: Iterable[Union[str, Path]]) -> Iterator[None]:
    """Inside the block ``check_writable`` refuses the files ``paths`` (and the files directly inside the folders
    among them): the inputs of a run are never written over, whatever name or link reaches them."""
    added: Set[Tuple[int, int]] = set()
    for path in paths:
        path = Path(path)
        for file in ([path] + (sorted(path.iterdir()) if path.is_dir() else [])):
            if file.is_file():
                added.add(_identity(file))
    added -= _PROTECTED
    _PROTECTED.update(added)
    try:
        yield
    finally:
        _PROTECTED.difference_update(added)


def is_protected(path: Union[str, Path]) -> bool:
    """Whether ``path`` is an existing file that ``protected_files`` guards."""
    return os.path.isfile(path) and _identity(path) in _PROTECTED


def check_writable(path: Union[str, Path]) -> str:
    """``path`` itself, or a ``ValueError`` when writing it would overwrite an input of the running tool."""
    path = os.fspath(path)
    if is_protected(path):
        raise ValueError(f'refusing to write {path}: it is one of the input files, which are never overwritten; '
                         f'write the outputs to another folder')
    return path


def file_stem(path: Union[str, Path]) -> str:
    """The name of ``path`` without its suffix (``a.b.jpg`` -> ``a.b``, ``x.nii.gz`` -> ``x``); a folder's name."""
    path = Path(path)
    if path.is_dir():
        return path.name
    if path.name.lower().endswith('.nii.gz'):
        return path.name[:-len('.nii.gz')]
    return path.stem


def unique_names(paths: Sequence[Union[str, Path]]) -> List[str]:
    """One distinct output name per input: its stem; inputs whose stems collide (compared without case, as on
    case-insensitive file systems) keep their suffix (``photo.jpg``, ``photo.png``), then get their folder's name
    in front (``a_x.png``, ``b_x.png``), then a counter."""
    paths = [Path(p) for p in paths]
    names = [file_stem(p) for p in paths]
    for rename in (lambda p, n: p.name, lambda p, n: f'{p.parent.name}_{n}'):
        counts = Counter(n.lower() for n in names)
        names = [rename(p, n) if counts[n.lower()] > 1 else n for p, n in zip(paths, names)]
    seen: Set[str] = set()
    unique = []
    for name in names:
        candidate, i = name, 1
        while candidate.lower() in seen:
            candidate, i = f'{name}_{i}', i + 1
        seen.add(candidate.lower())
        unique.append(candidate)
    return unique


def _swap_red_blue(image: np.ndarray, band_pixels: int = 1 << 16) -> None:
    """Reverse the channel order of an HxWx3 array in place, a band of rows at a time (RGB <-> BGR)."""
    rows = max(1, band_pixels // max(1, image.shape[1]))
    for y0 in range(0, image.shape[0], rows):
        band = image[y0:y0 + rows]
        band[...] = band[..., ::-1]  # numpy buffers the overlapping band, not the image


def write_rgb(path: Union[str, Path], image: np.ndarray) -> None:
    """Write an HxWx3 RGB array (uint8, or uint16 for PNG/TIFF) to ``path`` in the format its suffix names.

    OpenCV encodes BGR. A writeable C-contiguous ``image`` is turned into BGR in place, band by band, and back
    once written (also on failure), so no full-size copy is made (a 12000 x 9000 picture would cost 324 MB more;
    PIL would hold it as 4 bytes a pixel): the caller's array reads BGR while this runs, so do not share it with
    another thread meanwhile. Other arrays (read-only, views) are converted through a copy.
    """
    path = check_writable(path)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'cannot write image {path}: expected an HxWx3 RGB array, got shape {image.shape}')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        if image.flags.c_contiguous and image.flags.writeable:
            _swap_red_blue(image)
            try:
                written = cv2.imwrite(path, image)
            finally:
                _swap_red_blue(image)
        else:
            written = cv2.imwrite(path, cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    except cv2.error as err:  # e.g. a suffix OpenCV has no writer for
        raise OSError(f'cannot write image {path}: {getattr(err, "err", None) or err}') from err
    if not written:
        raise OSError(f'cannot write image {path}')


def list_images(folder: Union[str, Path]) -> list:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'image folder {folder} does not exist')
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_json(path: Union[str, Path], what: str = 'JSON file'):
    """Parse a JSON file; ``FileNotFoundError``/``ValueError`` naming ``path`` (and what it should be)."""
    import json
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} {path} does not exist')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'{path} is not valid JSON: {err}') from err
