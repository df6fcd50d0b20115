"""What every task model shares: building parts from configs or modules, and the three forward modes."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.registry import Registry
from torch import nn

from backbones.checkpoint_io import split_load_options
from .registry import TASKS

ModuleOrCfg = Union[nn.Module, dict, None]


def build_part(part: ModuleOrCfg, registry: Registry, **defaults: Any) -> Optional[nn.Module]:
    """A part given as a module is used as is; a config dict is built from ``registry`` with ``defaults`` added."""
    if part is None or isinstance(part, nn.Module):
        return part
    if isinstance(part, dict):
        cfg = dict(part)
        for key, value in defaults.items():
            cfg.setdefault(key, value)
        return registry.build(cfg)
    raise TypeError(f'expected an nn.Module or a config dict, got {type(part).__name__}')


class TaskModel(BaseModel):
    """An ``mmengine`` model: ``forward(inputs, data_samples, mode)`` with ``'loss'``, ``'predict'``, ``'tensor'``.

    Subclasses implement ``_forward`` (raw head outputs, what ``tools/export.py`` exports), ``loss`` and
    ``predict`` (per-image results in the original image's coordinates), and ``visualize``.
    """

    def __init__(self, data_preprocessor: ModuleOrCfg = None, init_cfg: Optional[dict] = None) -> None:
        if isinstance(data_preprocessor, dict):
            data_preprocessor = TASKS.build(data_preprocessor)
        # ``init_cfg=dict(allow_missing=[...])``: keys a checkpoint may lack (backbones.checkpoint_io)
        init_cfg, load_options = split_load_options(init_cfg)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.load_options = load_options

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[dict]] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def _forward(self, inputs: torch.Tensor):
        raise NotImplementedError

    def loss(self, inputs: torch.Tensor, data_samples: List[dict]) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def predict(self, inputs: torch.Tensor, data_samples: List[dict]) -> List[dict]:
        raise NotImplementedError

    def visualize(self, image: np.ndarray, result: dict) -> np.ndarray:
        """A picture of ``result`` for a person (RGB uint8)."""
        raise NotImplementedError

    def save_result(self, result: dict, stem: str) -> List[str]:
        """Write the raw result next to the visualisation (e.g. ``stem + '.npy'``); returns the paths written.

        ``tools/infer.py --save-raw`` calls it once per image (or video frame, ``stem`` then ends in the frame
        number); tasks override it (detection: COCO-style json, depth: .npy/16-bit PNG, volumes: NIfTI).
        """
        return []

    # --- inputs of tools/infer.py and Inferencer ------------------------------------------------------------
    #: file suffixes ``tools/infer.py`` picks from a folder or glob
    input_suffixes = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
    #: whether ``tools/infer.py`` may feed this model video frames
    supports_video = True

    def read_input(self, path: str) -> np.ndarray:
        """Read one input file (RGB uint8 by default; volumetric tasks read NIfTI cases)."""
        from data.io import read_rgb
        return read_rgb(path)

    def collect_inputs(self, path: str) -> Optional[List[str]]:
        """Task-specific discovery of inputs under ``path`` (e.g. BraTS case folders); ``None`` = the default."""
        return None


def stack_images(images: List[np.ndarray], what: str) -> torch.Tensor:
    """HxWxC uint8 arrays of one size -> a BxCxHxW uint8 tensor; a clear error when sizes differ."""
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) != 1:
        raise ValueError(f'{what} of one batch differ in shape {sorted(shapes)}; use batch size 1 or resize/pad')
    batch = np.stack([np.ascontiguousarray(im) for im in images])
    if batch.ndim == 3:
        batch = batch[..., None]
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


class SampleListPreprocessor(BaseDataPreprocessor):
    """Base for our preprocessors: the batch is a list of sample dicts (see ``data.sample_list_collate``)."""

    def forward(self, data: Any, training: bool = False) -> dict:  # noqa: D401 - mmengine API
        if isinstance(data, dict) and 'inputs' in data:  # already processed
            return data
        if isinstance(data, dict):
            data = [data]
        return self.process(list(data), training)

    def process(self, samples: List[dict], training: bool) -> dict:
        raise NotImplementedError
