"""Map torchvision ImageNet MobileNet checkpoints onto our modules (same architecture, other key names).

torchvision keeps each block's layers in an anonymous ``nn.Sequential`` (``conv`` in V2, ``block`` in V3); ours
names them ``expand``, ``depthwise``, ``se``, ``project``. The role of each torchvision layer is read off the keys
themselves: a squeeze-excitation has ``fc1``/``fc2``; the last unit is the projection; a block with two
conv-norm-activation units before it has an expansion.
"""
from __future__ import annotations

import re
from collections import OrderedDict, defaultdict
from typing import Callable, Dict, List, Tuple

from torch import Tensor, nn

from .checkpoint_io import safe_load, state_dict_of

StateDict = Dict[str, Tensor]
WEIGHT_CONVERTERS: Dict[str, Callable[[StateDict], StateDict]] = {}


def register_converter(name: str):
    """Register ``fn(torchvision_state_dict) -> our_state_dict`` for ``tools/convert_weights.py --arch name``."""
    def wrap(fn):
        if name in WEIGHT_CONVERTERS:
            raise KeyError(f'converter {name} registered twice')
        WEIGHT_CONVERTERS[name] = fn
        return fn
    return wrap


_BLOCK_KEY = re.compile(r'^features\.(\d+)\.(conv|block)\.(\d+)\.(.+)$')


def _block_units(keys: List[str]) -> List[Tuple[str, List[str]]]:
    """Group one torchvision block's keys into units [(kind, [(sub_index, rest)])] in order."""
    by_index: Dict[int, List[str]] = defaultdict(list)
    for k in keys:
        _, _, j, rest = _BLOCK_KEY.match(k).groups()
        by_index[int(j)].append(rest)
    units, indices, i = [], sorted(by_index), 0
    while i < len(indices):
        j = indices[i]
        rests = by_index[j]
        if any(r.startswith('fc1.') for r in rests):
            units.append(('se', [(j, r, r) for r in rests]))
        elif any(r.startswith('0.') for r in rests):  # Conv2dNormActivation: j.0 conv, j.1 norm
            units.append(('cna', [(j, r, r) for r in rests]))
        else:  # torchvision V2 projection: bare conv at j, BatchNorm at j+1
            bn = indices[i + 1]
            units.append(('cna', [(j, r, '0.' + r) for r in rests] + [(bn, r, '1.' + r) for r in by_index[bn]]))
            i += 1
        i += 1
    return units


def torchvision_mobilenet_to_ours(state_dict: StateDict, prefix: str = 'backbone.') -> StateDict:
    """Rename a torchvision ``mobilenet_v2`` / ``mobilenet_v3_*`` state dict to our backbone keys (+ ``head.*``)."""
    out: StateDict = OrderedDict()
    blocks: Dict[int, List[str]] = defaultdict(list)
    for key, value in state_dict.items():
        m = _BLOCK_KEY.match(key)
        if m:
            blocks[int(m.group(1))].append(key)
        elif key.startswith('features.'):
            out[prefix + key] = value
    for layer, keys in blocks.items():
        units = _block_units(keys)
        kind = re.match(r'^features\.\d+\.(conv|block)\.', keys[0]).group(1)
        convs = [u for u in units if u[0] == 'cna']
        names = iter(['expand', 'depthwise', 'project'] if len(convs) == 3 else ['depthwise', 'project'])
        for unit_kind, members in units:
            name = 'se' if unit_kind == 'se' else next(names)
            for j, rest, ours in members:
                out[f'{prefix}features.{layer}.{name}.{ours}'] = state_dict[f'features.{layer}.{kind}.{j}.{rest}']
    # classifier: V2 = [Dropout, Linear]; V3 = [Linear, Hardswish, Dropout, Linear]
    linears = sorted({int(k.split('.')[1]) for k in state_dict if k.startswith('classifier.')})
    if len(linears) == 1:
        names = ['fc']
    else:
        names = ['hidden', 'fc']
    for name, index in zip(names, linears):
        for p in ('weight', 'bias'):
            out[f'head.{name}.{p}'] = state_dict[f'classifier.{index}.{p}']
    return out


for _arch in ('mobilenet_v2', 'mobilenet_v3_large', 'mobilenet_v3_small'):
    register_converter(_arch)(torchvision_mobilenet_to_ours)


def is_torchvision_mobilenet(state_dict: StateDict) -> bool:
    return any(_BLOCK_KEY.match(k) for k in state_dict)


def load_backbone_weights(backbone: nn.Module, checkpoint: str, strict: bool = False):
    """Load a checkpoint into ``backbone``: a torchvision state dict, a converted one or a full model's."""
    state = state_dict_of(safe_load(checkpoint))
    if is_torchvision_mobilenet(state):
        state = torchvision_mobilenet_to_ours(state)
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    result = backbone.load_state_dict(state, strict=strict)
    return result.missing_keys, result.unexpected_keys
