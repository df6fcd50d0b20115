"""COCO image ids from image file names.

``tools/infer.py --save-raw`` without ``--ann-file`` names each image of its COCO results json by its file stem
(it knows no dataset). A ground-truth json knows each image's ``file_name``; these helpers turn such names into
the ground truth's ids, so the results are scored without renaming.
"""
from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Dict, Iterable, List

_AMBIGUOUS = object()


def image_id_index(images: Iterable[dict]) -> Dict[str, Any]:
    """name -> id for the ``images`` of a COCO json: each ``file_name`` as written, its base name and its stem
    (``val2017/000000000036.jpg``, ``000000000036.jpg``, ``000000000036``). A name two images share is left out:
    it cannot say which one is meant."""
    index: Dict[str, Any] = {}
    for image in images:
        file_name = str(image.get('file_name', ''))
        if not file_name:
            continue
        base = PureWindowsPath(PurePosixPath(file_name).name).name  # either separator
        for key in {file_name, base, PurePosixPath(base).stem}:
            index[key] = image['id'] if index.get(key, image['id']) == image['id'] else _AMBIGUOUS
    return {k: v for k, v in index.items() if v is not _AMBIGUOUS}


def resolve_image_ids(detections: List[dict], images: Iterable[dict], source: str) -> List[dict]:
    """``detections`` (COCO result dicts) with every ``image_id`` that is not an id of ``images`` but names one of
    them (file name, base name or stem) replaced by that image's id. An ``image_id`` that is neither raises a
    ``ValueError`` naming ``source`` (the results file) and the first such ids."""
    images = list(images)
    ids = {image['id'] for image in images}
    if all(d['image_id'] in ids for d in detections):
        return detections
    index = image_id_index(images)
    unknown = sorted({str(d['image_id']) for d in detections if d['image_id'] not in ids
                      and str(d['image_id']) not in index})
    if unknown:
        raise ValueError(f'{source}: {len(unknown)} image_id(s) are neither image ids nor image file names of the '
                         f'ground truth: {", ".join(unknown[:5])}{" ..." if len(unknown) > 5 else ""}')
    return [d if d['image_id'] in ids else dict(d, image_id=index[str(d['image_id'])]) for d in detections]


def image_id_of(index: Dict[str, Any], file: str, source: str) -> Any:
    """The id of the image ``file`` (looked up by base name, then stem) in an ``image_id_index`` of ``source``."""
    name = PurePosixPath(str(file).replace('\\', '/')).name
    for key in (name, PurePosixPath(name).stem):
        if key in index:
            return index[key]
    raise ValueError(f'{file}: no image of {source} has this file name (looked for {name} and its stem)')
