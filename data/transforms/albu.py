"""Run an albumentations pipeline on a sample dict, carrying boxes, masks and depth maps through every step.

``dict(type='Albumentations', transforms=[dict(type='HorizontalFlip', p=0.5), dict(type='Resize', height=320,
width=320)])`` builds ``albumentations.Compose`` from the listed transform names. Keys handled:
``img`` (the image), ``gt_bboxes`` + ``gt_labels`` (+ ``gt_ignore_flags`` when present: crowd/difficult boxes)
(xyxy pixels, ``pascal_voc`` format; boxes that leave the image are clipped and those left empty are dropped
together with their labels and flags), ``gt_seg`` (a label mask, nearest
interpolation) and ``gt_depth`` (a float map, nearest so invalid zeros do not bleed). ``meta['img_shape']`` is
set to the output size.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Union

import albumentations as A
import numpy as np

from ..registry import TRANSFORMS


def build_albu(transform: Union[dict, A.BasicTransform]) -> A.BasicTransform:
    """``dict(type='Name', **kwargs)`` -> ``albumentations.Name(**kwargs)``; nested ``transforms`` lists too."""
    if not isinstance(transform, dict):
        return transform
    cfg = dict(transform)
    name = cfg.pop('type')
    cls = getattr(A, name, None)
    if cls is None:
        raise KeyError(f'albumentations has no transform {name!r}')
    if 'transforms' in cfg:
        cfg['transforms'] = [build_albu(t) for t in cfg['transforms']]
    return cls(**cfg)


@TRANSFORMS.register_module()
class Albumentations:
    def __init__(self, transforms: Sequence[Union[dict, A.BasicTransform]], min_visibility: float = 0.0,
                 min_area: float = 0.0) -> None:
        self.transforms: List[A.BasicTransform] = [build_albu(t) for t in transforms]
        self.compose = A.Compose(
            self.transforms,
            bbox_params=A.BboxParams(format='pascal_voc', label_fields=['gt_labels', 'gt_ignore_flags'], clip=True,
                                     min_visibility=min_visibility, min_area=min_area),
            additional_targets={'gt_depth': 'mask'})

    def __call__(self, sample: Dict[str, Any]) -> Dict[str, Any]:
        inputs: Dict[str, Any] = dict(image=sample['img'])
        has_boxes = 'gt_bboxes' in sample
        inputs['bboxes'] = (np.asarray(sample['gt_bboxes'], np.float32).reshape(-1, 4) if has_boxes
                            else np.zeros((0, 4), np.float32))
        inputs['gt_labels'] = (np.asarray(sample['gt_labels'], np.int64).reshape(-1) if has_boxes
                               else np.zeros((0,), np.int64))
        inputs['gt_ignore_flags'] = (np.asarray(sample['gt_ignore_flags'], bool).reshape(-1)
                                     if 'gt_ignore_flags' in sample else np.zeros(len(inputs['gt_labels']), bool))
        if 'gt_seg' in sample:
            inputs['mask'] = sample['gt_seg']
        if 'gt_depth' in sample:
            inputs['gt_depth'] = sample['gt_depth']
        try:
            out = self.compose(**inputs)
        except ValueError as err:  # e.g. a degenerate box; datasets should have dropped it already
            raise ValueError(f"{sample.get('meta', {}).get('file')}: {err}") from err
        sample['img'] = out['image']
        if has_boxes:
            sample['gt_bboxes'] = np.asarray(out['bboxes'], np.float32).reshape(-1, 4)
            sample['gt_labels'] = np.asarray(out['gt_labels'], np.int64).reshape(-1)
            if 'gt_ignore_flags' in sample:
                sample['gt_ignore_flags'] = np.asarray(out['gt_ignore_flags'], bool).reshape(-1)
        if 'gt_seg' in sample:
            sample['gt_seg'] = out['mask']
        if 'gt_depth' in sample:
            sample['gt_depth'] = out['gt_depth']
        sample.setdefault('meta', {})['img_shape'] = tuple(out['image'].shape[:2])
        return sample

    def __repr__(self) -> str:
        return f'Albumentations({[type(t).__name__ for t in self.transforms]})'
