"""Reading images with errors that name the file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

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


def write_rgb(path: Union[str, Path], image: np.ndarray) -> None:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)):
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
