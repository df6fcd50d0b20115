"""Super-resolution data: folders of high-resolution images, LR made by anti-aliased bicubic down-scaling."""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
from torch.utils.data import Dataset

from ..io import list_images, read_rgb
from ..registry import DATASETS, TRANSFORMS
from ..transforms.resize import bicubic_downscale, mod_crop


def build_pipeline(pipeline: Optional[Sequence[Union[dict, Callable]]]) -> List[Callable]:
    """Transforms given as configs are built from ``data.TRANSFORMS``; callables are kept."""
    return [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in (pipeline or [])]


@DATASETS.register_module()
class SRImageFolder(Dataset):
    """HR images of ``data_root`` (PNG/JPEG/...) paired with their bicubic LR version at ``scale``.

    Each HR image is mod-cropped to a multiple of ``scale`` and down-scaled once (PIL bicubic, anti-aliased: the
    degradation of the published Set5/Set14 tables), then kept in memory. A sample is
    ``{'img': LR HxWx3 uint8, 'gt_hr': HR uint8, 'meta': {...}}``. For training, ``num_samples`` sets the epoch
    length (random crops are drawn by the pipeline), so an epoch is not tied to the 91 images of T91.
    """

    def __init__(self, data_root: str, scale: int, pipeline: Optional[Sequence] = None,
                 num_samples: Optional[int] = None, cache: bool = True) -> None:
        if scale < 1:
            raise ValueError(f'scale must be >= 1, got {scale}')
        self.data_root, self.scale, self.num_samples = data_root, scale, num_samples
        self.files = [str(p) for p in list_images(data_root)]
        if not self.files:
            raise FileNotFoundError(f'no images found in {data_root}')
        self.pipeline = build_pipeline(pipeline)
        self.cache = cache
        self._pairs: dict = {}
        self.metainfo = dict(task='super_resolution', scale=scale)

    def __len__(self) -> int:
        return self.num_samples or len(self.files)

    def _pair(self, index: int):
        if index in self._pairs:
            return self._pairs[index]
        hr = mod_crop(read_rgb(self.files[index]), self.scale)
        if min(hr.shape[:2]) < self.scale:
            raise ValueError(f'{self.files[index]}: image {hr.shape[0]}x{hr.shape[1]} is smaller than scale '
                             f'{self.scale}')
        pair = (bicubic_downscale(hr, self.scale), hr)
        if self.cache:
            self._pairs[index] = pair
        return pair

    def __getitem__(self, index: int) -> dict:
        image_index = index % len(self.files)
        lr, hr = self._pair(image_index)
        file = self.files[image_index]
        sample = dict(img=lr, gt_hr=hr,
                      meta=dict(img_id=os.path.splitext(os.path.basename(file))[0], file=file,
                                ori_shape=lr.shape[:2], scale_factor=self.scale))
        for transform in self.pipeline:
            sample = transform(sample)
        return sample
