"""Any timm model as a backbone of ours: ``timm.create_model(name, features_only=True)`` behind our contract.

timm is optional (``pip install timm``): importing this module works without it, building a ``TimmBackbone`` says
what to install. Nothing is downloaded: weights come only from ``pretrained_file``, a local timm checkpoint (of the
classifier or its features) read with our safe loader (``weights_only``) and handed to timm's own loading (its
key filters and strict check) as a state dict.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .checkpoint_io import safe_load, state_dict_of
from .registry import BACKBONES


def _import_timm():
    try:
        import timm
    except ImportError:
        raise ImportError('TimmBackbone needs the timm package: pip install timm') from None
    return timm


@BACKBONES.register_module()
class TimmBackbone(nn.Module):
    """``forward(x)`` -> timm's feature maps (NCHW) at ``out_indices`` (timm's feature indices; its default when
    None). ``out_channels``/``strides`` come from timm's ``feature_info``. ``frozen_stages = k`` freezes (and keeps
    in eval mode) everything up to the module giving feature ``k``; ``norm_eval`` keeps every BatchNorm in eval
    mode. Extra keyword arguments go to ``timm.create_model`` (e.g. ``output_stride=16`` for dilation)."""

    def __init__(self, model_name: str, out_indices: Optional[Sequence[int]] = None,
                 pretrained_file: Optional[str] = None, frozen_stages: int = -1, norm_eval: bool = False,
                 in_channels: int = 3, **timm_kwargs) -> None:
        super().__init__()
        timm = _import_timm()
        kwargs = dict(features_only=True, pretrained=False, in_chans=in_channels, **timm_kwargs)
        if out_indices is not None:
            kwargs['out_indices'] = tuple(out_indices)
        if pretrained_file:
            if not os.path.isfile(pretrained_file):
                raise FileNotFoundError(f'TimmBackbone: pretrained_file {pretrained_file} does not exist')
            state = state_dict_of(safe_load(pretrained_file))
            kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(state_dict=state))
        self.model_name, self.frozen_stages, self.norm_eval = model_name, frozen_stages, norm_eval
        self.model = timm.create_model(model_name, **kwargs)
        info = self.model.feature_info
        self.out_channels: List[int] = list(info.channels())
        self.strides: List[int] = list(info.reduction())
        self._frozen = self._modules_up_to(frozen_stages)
        self._freeze()

    def _modules_up_to(self, index: int) -> List[nn.Module]:
        """The modules run before (and including) the one giving feature ``index``, in registration order."""
        if index < 0:
            return []
        names = self.model.feature_info.module_name()
        target = names[min(index, len(names) - 1)]
        candidates = {target, target.replace('.', '_', 1)}  # FeatureListNet flattens the first level
        modules, inside = [], None
        for name, module in self.model.named_modules():
            if name == '':
                continue
            if inside is None and name in candidates:
                inside = name
            elif inside is not None and not name.startswith(inside + '.'):
                break
            modules.append(module)
        if inside is None:
            raise ValueError(f'TimmBackbone({self.model_name!r}): cannot find the module {target!r} of feature '
                             f'{index} to freeze up to')
        return modules

    def _freeze(self) -> None:
        for module in self._frozen:
            module.eval()
            for p in module.parameters(recurse=False):
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outs = self.model(x)
        # some timm families (Swin, ...) give NHWC maps: put channels first, as every map of ours is
        return [f.permute(0, 3, 1, 2) if f.shape[1] != c and f.shape[-1] == c else f
                for f, c in zip(outs, self.out_channels)]
