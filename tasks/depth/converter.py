"""Convert the official FastDepth checkpoint (dwofk/fast-depth, ``MobileNetSkipAdd``) to our ``DepthEstimator``.

The official ``model_best.pth.tar`` pickles the whole model object, which our safe loader refuses to unpickle (it
could run code). Extract its state dict once with the original code (docs/depth.md shows how), then run
``tools/convert_weights.py --arch fastdepth state_dict.pth ours.pth``. The official layout (``models.py``):

* encoder ``conv0`` = Sequential(conv 3x3 s2, BN, ReLU6): keys ``conv0.0.weight``, ``conv0.1.*``;
  ``conv1`` .. ``conv13`` = Sequential(depthwise 3x3, BN, ReLU6, pointwise 1x1, BN, ReLU6): ``convN.0.weight``,
  ``convN.1.*``, ``convN.3.weight``, ``convN.4.*`` (the layers of ``imagenet/mobilenet.py``'s ``model.0..13``);
* decoder ``decode_conv1`` .. ``decode_conv5`` = Sequential(depthwise 5x5 unit, pointwise 1x1 unit), each unit a
  Sequential(conv, BN, ReLU): ``decode_convN.0.0.weight``, ``decode_convN.0.1.*``, ``decode_convN.1.0.weight``,
  ``decode_convN.1.1.*``; ``decode_conv6`` = pointwise(32, 1): ``decode_conv6.0.weight``, ``decode_conv6.1.*``.

Ours (``configs/fastdepth_mobilenetv1_20e_nyu.py``): ``backbone.features.0`` (stem), ``backbone.features.N``
(``depthwise`` / ``pointwise`` units), ``head.stages.{0..4}`` and ``head.final`` (conv + BN + ReLU). The skips of
the official forward (after the 2nd, 3rd and 4th up-sampling, from ``conv5``, ``conv3``, ``conv1``) are the ones
our decoder adds at strides 8, 4, 2. The conversion is exact: every source tensor is used and every target tensor
is filled, otherwise it fails naming the keys. Pruned official networks (other widths) convert too;
``fastdepth_widths`` reads their widths for the config (``tools/prune.py`` writes such configs).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List

import torch
from torch import Tensor

from backbones.converters import register_converter

StateDict = Dict[str, Tensor]
NORM_KEYS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
ENCODER_LAYERS = 14   # conv0 (stem) + 13 depthwise-separable blocks
DECODER_STAGES = 5    # decode_conv1..5; decode_conv6 is the final 1x1 layer


def _unit(source: str, target: str) -> Dict[str, str]:
    """Keys of one conv (no bias) + BN unit: ``source.0.weight`` / ``source.1.*`` -> ``target.0`` / ``target.1``."""
    pairs = {f'{source}.0.weight': f'{target}.0.weight'}
    pairs.update({f'{source}.1.{k}': f'{target}.1.{k}' for k in NORM_KEYS})
    return pairs


def _split_unit(source: str, conv: int, norm: int, target: str) -> Dict[str, str]:
    """A unit whose conv and BN sit at positions ``conv`` and ``norm`` of one flat Sequential (the encoder)."""
    pairs = {f'{source}.{conv}.weight': f'{target}.0.weight'}
    pairs.update({f'{source}.{norm}.{k}': f'{target}.1.{k}' for k in NORM_KEYS})
    return pairs


def official_key_map() -> Dict[str, str]:
    """Every key of the official ``MobileNetSkipAdd`` state dict -> our key, in network order."""
    mapping: Dict[str, str] = OrderedDict()
    mapping.update(_unit('conv0', 'backbone.features.0'))
    for i in range(1, ENCODER_LAYERS):
        mapping.update(_split_unit(f'conv{i}', 0, 1, f'backbone.features.{i}.depthwise'))
        mapping.update(_split_unit(f'conv{i}', 3, 4, f'backbone.features.{i}.pointwise'))
    for j in range(1, DECODER_STAGES + 1):
        mapping.update(_unit(f'decode_conv{j}.0', f'head.stages.{j - 1}.depthwise'))
        mapping.update(_unit(f'decode_conv{j}.1', f'head.stages.{j - 1}.pointwise'))
    mapping.update(_unit('decode_conv6', 'head.final'))
    return mapping


def _strip_module(state_dict: StateDict) -> StateDict:
    """Drop the ``module.`` prefix a ``DataParallel`` model's state dict carries."""
    if state_dict and all(k.startswith('module.') for k in state_dict):
        return OrderedDict((k[len('module.'):], v) for k, v in state_dict.items())
    return state_dict


def _check_shapes(state_dict: StateDict) -> None:
    """The widths must chain: each layer's input channels are the previous layer's output channels."""
    problems: List[str] = []
    previous = state_dict['conv0.0.weight'].shape[0]
    if state_dict['conv0.0.weight'].shape[1] != 3:
        problems.append(f"conv0.0.weight takes {state_dict['conv0.0.weight'].shape[1]} input channels, not 3 (RGB)")
    layers = [(f'conv{i}.0.weight', f'conv{i}.3.weight') for i in range(1, ENCODER_LAYERS)]
    layers += [(f'decode_conv{j}.0.0.weight', f'decode_conv{j}.1.0.weight') for j in range(1, DECODER_STAGES + 1)]
    width_of_layer = {}
    for index, (dw, pw) in enumerate(layers):
        dw_shape, pw_shape = state_dict[dw].shape, state_dict[pw].shape
        if dw_shape[0] != previous or dw_shape[1] != 1:
            problems.append(f'{dw} has shape {tuple(dw_shape)}, expected ({previous}, 1, k, k) (depthwise)')
        if pw_shape[1] != dw_shape[0] or tuple(pw_shape[2:]) != (1, 1):
            problems.append(f'{pw} has shape {tuple(pw_shape)}, expected (C, {dw_shape[0]}, 1, 1)')
        previous = pw_shape[0]
        width_of_layer[index + 1] = previous
    final = state_dict['decode_conv6.0.weight'].shape
    if tuple(final) != (1, previous, 1, 1):
        problems.append(f'decode_conv6.0.weight has shape {tuple(final)}, expected (1, {previous}, 1, 1)')
    # additive skips: decode_conv2/3/4 outputs (+ up-sampling) meet conv5, conv3, conv1
    for stage, layer in ((2, 5), (3, 3), (4, 1)):
        stage_out = width_of_layer[ENCODER_LAYERS - 1 + stage]
        if stage_out != width_of_layer[layer]:
            problems.append(f'decode_conv{stage} outputs {stage_out} channels but the skip from conv{layer} has '
                            f'{width_of_layer[layer]}: not the MobileNetSkipAdd layout')
    for theirs, ours in official_key_map().items():   # each BN has its convolution's width
        if ours.endswith('.1.weight'):
            prefix, position = theirs[:-len('.weight')].rsplit('.', 1)   # 'conv4', '4': the BN after conv4.3
            conv = state_dict[f'{prefix}.{int(position) - 1}.weight']
            for name in NORM_KEYS[:4]:
                key = f'{prefix}.{position}.{name}'
                if tuple(state_dict[key].shape) != (conv.shape[0],):
                    problems.append(f'{key} has shape {tuple(state_dict[key].shape)}, expected ({conv.shape[0]},)')
    if problems:
        raise ValueError('fastdepth: the state dict does not chain as MobileNetSkipAdd: ' + '; '.join(problems))


@register_converter('fastdepth')
def fastdepth_to_ours(state_dict: StateDict) -> StateDict:
    """The official ``MobileNetSkipAdd`` state dict -> our ``DepthEstimator`` keys, every tensor accounted for.

    ``num_batches_tracked`` (absent from checkpoints of PyTorch < 0.4.1) is filled with 0 when the source has
    none at all; any other missing or unknown key raises ``ValueError`` naming it.
    """
    state = _strip_module(OrderedDict(state_dict))
    mapping = official_key_map()
    unknown = [k for k in state if k not in mapping]
    if unknown:
        raise ValueError(f'fastdepth: {len(unknown)} tensor(s) are not in the official MobileNetSkipAdd layout '
                         f'(conv0..conv13, decode_conv1..decode_conv6): {unknown[:8]}')
    missing = [k for k in mapping if k not in state]
    counters = [k for k in mapping if k.endswith('num_batches_tracked')]
    if missing and set(missing) == set(counters):  # an old checkpoint without BN batch counters
        state.update({k: torch.tensor(0, dtype=torch.long) for k in counters})
        missing = []
    if missing:
        raise ValueError(f'fastdepth: {len(missing)} tensor(s) of the official layout are missing: {missing[:8]}')
    _check_shapes(state)
    return OrderedDict((ours, state[theirs]) for theirs, ours in mapping.items())


def fastdepth_widths(state_dict: StateDict) -> Dict[str, List[int]]:
    """Layer widths of a converted (ours) FastDepth state dict: ``backbone`` (14) and ``head`` (5) channels,
    the ``widths`` of ``MobileNetV1`` and the ``channels`` of ``NNConv5Decoder`` in a config."""
    backbone = [int(state_dict['backbone.features.0.0.weight'].shape[0])]
    backbone += [int(state_dict[f'backbone.features.{i}.pointwise.0.weight'].shape[0])
                 for i in range(1, ENCODER_LAYERS)]
    head = [int(state_dict[f'head.stages.{j}.pointwise.0.weight'].shape[0]) for j in range(DECODER_STAGES)]
    return dict(backbone=backbone, head=head)
