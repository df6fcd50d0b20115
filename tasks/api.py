"""The public entry points: ``build_model`` (any config, optional checkpoint) and ``Inferencer``."""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from torch import nn

from backbones.checkpoint_io import check_state_dict, model_load_options, safe_load, state_dict_of
from .registry import TASKS

ConfigLike = Union[str, os.PathLike, Config, dict]
ImageLike = Union[np.ndarray, str, os.PathLike]


def load_config(config: ConfigLike) -> Config:
    """A ``Config`` from a path, a dict or a ``Config``."""
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return Config(config)
    path = os.fspath(config)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist')
    return Config.fromfile(path)


def load_weights(model: nn.Module, checkpoint: str, strict: bool = True) -> None:
    """Load a checkpoint (ours or a Runner's) into ``model`` with the safe loader.

    Strict unless ``strict=False``: missing or unexpected keys and shape mismatches raise
    ``CheckpointMismatchError`` naming the file and the keys, except those the model config allows
    (``init_cfg=dict(allow_missing=[...], allow_unexpected=[...])``, see ``backbones.checkpoint_io``).
    """
    checkpoint = os.fspath(checkpoint)
    state = state_dict_of(safe_load(checkpoint))
    if any(k.startswith('module.') for k in state):  # saved from DistributedDataParallel
        state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    if strict:
        state = check_state_dict(model.state_dict(), state, checkpoint, **model_load_options(model))
    model.load_state_dict(state, strict=False)


def build_model(config: ConfigLike, checkpoint: Optional[str] = None, device: Union[str, torch.device] = 'cpu'):
    """Build ``config.model`` from the registries, load ``checkpoint`` if given; returned in eval mode."""
    cfg = load_config(config)
    if 'model' not in cfg:
        raise KeyError('the config has no `model` entry')
    if DefaultScope.get_current_instance() is None:
        init_default_scope(cfg.get('default_scope', 'mobilevision'))
    with DefaultScope.overwrite_default_scope('mobilevision'):
        model = TASKS.build(cfg.model)
    if checkpoint:
        load_weights(model, checkpoint)
    return model.to(device).eval()


class Inferencer:
    """Run a trained model on images: ``Inferencer(cfg, ckpt)(image_or_path_or_list)``.

    A single image (RGB array or path) gives one result dict; a list gives a list. Results are in the original
    image's coordinates (see each task's ``predict``). ``visualize(image, result)`` draws one for a person.

    Arrays follow one rule for every image task (``data.io.as_rgb_uint8``): HxWx3 RGB, uint8 in 0-255 or float in
    [0, 1]; a float image outside [0, 1] is a ``ValueError``. Volumes (``C x D x H x W``) go to the model as they
    are.

    ``backend='onnxruntime'``: ``checkpoint`` is an ONNX file of this config (``tools/export.py``,
    ``tools/quantize.py``) run by onnxruntime with ``threads`` threads; pre- and post-processing stay the model's
    (``tasks.onnx_backend``). ``fuse=True`` folds BatchNorms into convolutions (``tasks.fuse``, torch backend).
    """

    BACKENDS = ('torch', 'onnxruntime')

    def __init__(self, config: ConfigLike, checkpoint: Optional[str] = None,
                 device: Union[str, torch.device] = 'cpu', backend: str = 'torch', fuse: bool = False,
                 threads: Optional[int] = None) -> None:
        from data.datasets import build_pipeline
        if backend not in self.BACKENDS:
            raise ValueError(f'backend must be one of {self.BACKENDS}, got {backend!r}')
        onnx = checkpoint is not None and os.fspath(checkpoint).lower().endswith('.onnx')
        if onnx != (backend == 'onnxruntime'):
            raise ValueError(f"backend {backend!r} needs {'an .onnx file' if not onnx else 'a torch checkpoint'}, "
                             f'got {checkpoint}' + (" (use backend='onnxruntime')" if onnx else ''))
        self.cfg = load_config(config)
        self.backend = backend
        self.model = build_model(self.cfg, None if onnx else checkpoint, device)
        if fuse and backend == 'torch':
            from .fusion import fuse as fuse_model
            fuse_model(self.model, channels_last=True)  # NHWC measured faster here (tasks/fusion.py)
        if onnx:
            from .onnx_backend import use_onnxruntime
            use_onnxruntime(self.model, os.fspath(checkpoint), threads)
        self.pipeline = build_pipeline(self.cfg.get('infer_pipeline', []))

    def read(self, path: Union[str, os.PathLike]):
        """One input file read by the model's ``read_input`` (RGB uint8 images; volumes for volumetric tasks)."""
        return self.model.read_input(os.fspath(path))

    def sample(self, image: ImageLike, name: Optional[str] = None, file: Optional[str] = None) -> dict:
        """The sample dict of one input (read with the model's ``read_input`` when a path is given)."""
        from data.io import as_rgb_uint8, file_stem
        if isinstance(image, (str, os.PathLike)):
            file = os.fspath(image)
            image, name = self.read(file), name or file_stem(file)
        what = file or (f'image {name}' if name is not None else 'image')
        if not isinstance(image, np.ndarray):
            image = np.asarray(image)
        if image.ndim != 4:  # volumes (C x D x H x W) are the volumetric models' own business
            image = as_rgb_uint8(image, what)
        ori_shape = tuple(image.shape[:2]) if image.ndim <= 3 else tuple(image.shape[1:])  # volumes: CxDxHxW
        sample = dict(img=image, meta=dict(img_id=name, file=file, ori_shape=ori_shape))
        for transform in self.pipeline:
            sample = transform(sample)
        return sample

    @torch.no_grad()
    def predict(self, image: ImageLike, name: Optional[str] = None, file: Optional[str] = None) -> dict:
        """The result of one input; ``name`` becomes ``img_id`` and ``file`` the file named in errors."""
        data = self.model.data_preprocessor([self.sample(image, name, file)], False)
        return self.model(**data, mode='predict')[0]

    def __call__(self, inputs: Union[ImageLike, Sequence[ImageLike]]):
        single = not isinstance(inputs, (list, tuple))
        results = [self.predict(item) for item in ([inputs] if single else list(inputs))]
        return results[0] if single else results

    def visualize(self, image: ImageLike, result: dict, **options) -> np.ndarray:
        """A picture of ``result`` on ``image`` (an array or a path); ``options`` go to the model's ``visualize``
        (e.g. ``score_thr`` for detection)."""
        from data.io import as_rgb_uint8
        if isinstance(image, (str, os.PathLike)):
            image = self.read(image)
        elif np.asarray(image).ndim != 4:
            image = as_rgb_uint8(image, 'image')
        return self.model.visualize(image, result, **options)
