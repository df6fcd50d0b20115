"""Map torchvision ImageNet MobileNet checkpoints onto our modules (same architecture, other key names).

torchvision keeps each block's layers in an anonymous ``nn.Sequential`` (``conv`` in V2, ``block`` in V3); ours
names them ``expand``, ``depthwise``, ``se``, ``project``. The role of each torchvision layer is read off the keys
themselves: a squeeze-excitation has ``fc1``/``fc2``; the last unit is the projection; a block with two
conv-norm-activation units before it has an expansion.
"""
from __future__ import annotations

import re
from collections import OrderedDict, defaultdict
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from torch import Tensor, nn

from .checkpoint_io import check_state_dict, safe_load, state_dict_of

StateDict = Dict[str, Tensor]
WEIGHT_CONVERTERS: Dict[str, Callable[[StateDict], StateDict]] = {}
#: arch -> ``fn(source_state_dict) -> model config`` of the model the converted weights must fit exactly
CONVERTER_TARGETS: Dict[str, Callable[[StateDict], dict]] = {}


def register_converter(name: str, target: Optional[Callable[[StateDict], dict]] = None):
    """Register ``fn(torchvision_state_dict) -> our_state_dict`` for ``tools/convert_weights.py --arch name``.

    ``target(source)`` gives the config of the model the result must fit (class count read from the source), so
    that a conversion that leaves tensors out, or produces some the model lacks, fails instead of writing them.
    """
    def wrap(fn):
        if name in WEIGHT_CONVERTERS:
            raise KeyError(f'converter {name} registered twice')
        WEIGHT_CONVERTERS[name] = fn
        if target is not None:
            CONVERTER_TARGETS[name] = target
        return fn
    return wrap


def convert_state_dict(arch: str, source: StateDict, source_name: str,
                       expected: Optional[Mapping[str, Tensor]] = None) -> StateDict:
    """Convert ``source`` with the ``arch`` converter and check that nothing was lost on either side.

    Every source tensor must appear in the result (converters rename, they do not copy, so this is checked by
    identity), and, when ``expected`` (the target model's ``state_dict()``) is given, the result must fit it key
    for key and shape for shape (``checkpoint_io.check_state_dict``). Errors name ``source_name`` and the keys.
    """
    if arch not in WEIGHT_CONVERTERS:
        raise KeyError(f'no converter for {arch!r}; known: {", ".join(sorted(WEIGHT_CONVERTERS))}')
    try:
        converted = WEIGHT_CONVERTERS[arch](source)
    except KeyError as err:
        raise ValueError(f'{source_name} is not a torchvision {arch} checkpoint: {err.args[0] if err.args else err}'
                         ) from None
    used = {id(v) for v in converted.values()}
    unused = [k for k, v in source.items() if isinstance(v, Tensor) and id(v) not in used]
    if unused:
        more = f' ... ({len(unused) - 8} more)' if len(unused) > 8 else ''
        raise ValueError(f'{source_name}: the {arch} converter left {len(unused)} of {len(source)} tensors unused '
                         f'({", ".join(unused[:8])}{more}); is it a torchvision {arch} checkpoint?')
    if expected is not None:
        check_state_dict(expected, converted, f'{source_name} converted as {arch}', target=f'our {arch} model')
    return converted


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


def _classifier_target(backbone: dict, head: dict, linear: str) -> Callable[[StateDict], dict]:
    """The ImageClassifier of a torchvision MobileNet, with the class count of the source's last linear layer."""
    def target(source: StateDict) -> dict:
        weight = source.get(linear)
        num_classes = int(weight.shape[0]) if isinstance(weight, Tensor) and weight.ndim == 2 else 1000
        return dict(type='ImageClassifier', backbone=backbone, head=dict(head, num_classes=num_classes))
    return target


_CLASSIFIERS = {  # torchvision's classifier heads (configs/classifier_*_imagenet.py)
    'mobilenet_v2': (dict(type='MobileNetV2'), dict(type='LinearClsHead', dropout=0.2), 'classifier.1.weight'),
    'mobilenet_v3_large': (dict(type='MobileNetV3', arch='large'),
                           dict(type='LinearClsHead', hidden_channels=1280, act_layer='hardswish', dropout=0.2),
                           'classifier.3.weight'),
    'mobilenet_v3_small': (dict(type='MobileNetV3', arch='small'),
                           dict(type='LinearClsHead', hidden_channels=1024, act_layer='hardswish', dropout=0.2),
                           'classifier.3.weight'),
}
for _arch, (_backbone, _head, _linear) in _CLASSIFIERS.items():
    register_converter(_arch, target=_classifier_target(_backbone, _head, _linear))(torchvision_mobilenet_to_ours)


def is_torchvision_mobilenet(state_dict: StateDict) -> bool:
    return any(_BLOCK_KEY.match(k) for k in state_dict)


def load_backbone_weights(backbone: nn.Module, checkpoint: str, strict: bool = True,
                          allow_missing: Sequence[str] = ()) -> Tuple[List[str], List[str]]:
    """Load a checkpoint into ``backbone``: a torchvision state dict, a converted one or a full model's.

    Strict (``checkpoint_io.check_state_dict``): every backbone tensor must be in the checkpoint with its shape,
    unless it matches a glob of ``allow_missing``. From a torchvision classifier or a full model's checkpoint only
    the backbone part is used: the classifier / other parts, and layers past the backbone's last one (a task may
    cut the tail it does not use, e.g. Mobile DeepLab drops MobileNetV2's last conv), are ignored. Returns the
    ``(missing, unexpected)`` keys that were tolerated.
    """
    state = state_dict_of(safe_load(checkpoint))
    partial = False
    if is_torchvision_mobilenet(state):
        state, partial = torchvision_mobilenet_to_ours(state), True
    if any(k.startswith('backbone.') for k in state):
        state, partial = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}, True
    expected = backbone.state_dict()
    allow_unexpected: List[str] = []
    features = getattr(backbone, 'features', None)
    if partial and isinstance(features, nn.Sequential):
        deeper = {int(m.group(1)) for m in map(re.compile(r'^features\.(\d+)\.').match, state) if m}
        allow_unexpected = [f'features.{i}.*' for i in sorted(deeper) if i >= len(features)]
    if strict:
        state = check_state_dict(expected, state, checkpoint, allow_missing, allow_unexpected, target='the backbone')
    result = backbone.load_state_dict(state, strict=False)
    return result.missing_keys, result.unexpected_keys
