"""NetAdapt-style structured channel pruning of FastDepth (Wofk et al., 2019, section III-D; Yang et al., 2018).

FastDepth prunes its MobileNet-NNConv5 network with NetAdapt from 0.74 to 0.37 GMACs. NetAdapt (Algorithm 1)
lowers a resource budget step by step; in each iteration every layer proposes removing just enough filters to
save that step's budget, the proposals are compared, and the best one is kept. Here:

* the resource is multiply-adds, re-measured after every step with our counter (``tasks.profiling.count_macs``,
  ``torch.utils.flop_counter``) where NetAdapt measures latency; the per-layer saving of a proposal comes from the
  same counter's per-module breakdown (MACs are linear in each layer's width, so one count gives every slope);
* the filters a layer keeps are those with the largest L2 norm (NetAdapt, section 3.2.2, "Choose Which
  Filters"); channels joined by an additive skip (an encoder feature added to a decoder stage) form one group and
  are ranked by the norm of both producing filters together, so the skip stays a plain addition;
* proposals are compared by ``criterion``: ``'magnitude'`` keeps the proposal that removes the smallest share of
  its group's filter energy (sum of the removed filters' squared norms / the group's; data-free: it prunes where
  the saving costs the fewest and weakest filters), ``'distortion'`` the one that
  changes the network's depth output least on calibration images (NetAdapt measures accuracy after short-term
  fine-tuning; we measure the output change without fine-tuning). Fine-tune the result afterwards
  (``tools/train.py`` on the written config) as NetAdapt's long-term fine-tuning does.

Only MobileNetV1 encoders with NNConv5 decoders (the paper's network, any widths) are supported.
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from backbones.mobilenet_v1 import MobileNetV1
from heads.nnconv5 import NNConv5Decoder
from ..profiling import count_macs

NORM_TENSORS = ('weight', 'bias', 'running_mean', 'running_var')


@dataclass
class Unit:
    """One convolution (``prefix.0`` with its norm at ``prefix.1``, or a bare ``nn.Conv2d`` at ``prefix``)."""
    prefix: str
    out_group: Optional[str]   # the channel group of its outputs (None: not prunable, e.g. the depth channel)
    in_group: Optional[str]    # of its inputs (None: the RGB image, or a depthwise convolution)
    depthwise: bool = False
    bare: bool = False         # a plain nn.Conv2d with bias (NNConv5Decoder(final_layer='conv'))

    @property
    def conv(self) -> str:
        return self.prefix if self.bare else self.prefix + '.0'


@dataclass
class ChannelGroups:
    """The prunable channel groups of a FastDepth model: which tensor dimension belongs to which group."""
    units: List[Unit]
    widths: Dict[str, int]
    layers: Dict[str, List[str]] = field(default_factory=dict)   # group -> the layer names it joins

    def producers(self, group: str) -> List[Unit]:
        """Units whose (non-depthwise) filters make the group's channels: the ones that are ranked."""
        return [u for u in self.units if u.out_group == group and not u.depthwise]


def _find(parent: Dict[str, str], name: str) -> str:
    while parent[name] != name:
        name = parent[name]
    return name


def channel_groups(model: nn.Module) -> ChannelGroups:
    """Describe ``model`` (a ``DepthEstimator`` with a ``MobileNetV1`` and an ``NNConv5Decoder``) as groups.

    Group ``E<i>`` holds the outputs of encoder layer ``i`` (0 = stem, 1..13 = blocks), ``D<j>`` those of decoder
    stage ``j``; an unprojected additive skip joins ``D<j>`` and the encoder layer it adds.
    """
    backbone, head = getattr(model, 'backbone', None), getattr(model, 'head', None)
    if not isinstance(backbone, MobileNetV1) or not isinstance(head, NNConv5Decoder):
        raise ValueError('pruning supports FastDepth with a MobileNetV1 encoder and an NNConv5Decoder, got '
                        f'{type(backbone).__name__} + {type(head).__name__}')
    last = backbone.feature_points[backbone.out_indices[-1]].layer
    if last != len(backbone.features) - 1:
        raise ValueError(f'the decoder must start from the last encoder layer ({len(backbone.features) - 1}), '
                         f'not layer {last}')
    names = [f'E{i}' for i in range(len(backbone.features))] + [f'D{j}' for j in range(len(head.stages))]
    parent = {n: n for n in names}
    units = [Unit('backbone.features.0', 'E0', None)]
    for i in range(1, len(backbone.features)):
        units.append(Unit(f'backbone.features.{i}.depthwise', f'E{i - 1}', None, depthwise=True))
        units.append(Unit(f'backbone.features.{i}.pointwise', f'E{i}', f'E{i - 1}'))
    previous = f'E{last}'
    for j in range(len(head.stages)):
        units.append(Unit(f'head.stages.{j}.depthwise', previous, None, depthwise=True))
        units.append(Unit(f'head.stages.{j}.pointwise', f'D{j}', previous))
        previous = f'D{j}'
    for stage, source in head.skip_sources.items():
        layer = backbone.feature_points[backbone.out_indices[source]].layer
        if str(stage) in head.skip_proj:
            units.append(Unit(f'head.skip_proj.{stage}', f'D{stage}', f'E{layer}'))
        else:  # x + skip: one channel index space
            parent[_find(parent, f'D{stage}')] = _find(parent, f'E{layer}')
    units.append(Unit('head.final', None, previous, bare=head.final_layer == 'conv'))
    for unit in units:
        unit.out_group = _find(parent, unit.out_group) if unit.out_group else None
        unit.in_group = _find(parent, unit.in_group) if unit.in_group else None
    modules = dict(model.named_modules())
    widths: Dict[str, int] = {}
    layers: Dict[str, List[str]] = {}
    for name in names:
        layers.setdefault(_find(parent, name), []).append(name)
    for unit in units:
        if unit.out_group:
            widths[unit.out_group] = int(modules[unit.conv].out_channels)
    groups = ChannelGroups(units, widths, layers)
    _check_coverage(model, groups)
    return groups


def _unit_tensors(unit: Unit) -> Dict[str, Tuple[Optional[str], ...]]:
    """State-dict keys of a unit -> the group of each dimension (None: not pruned)."""
    out = unit.out_group
    dims = {f'{unit.conv}.weight': (out, unit.in_group)}
    if unit.bare:
        dims[f'{unit.prefix}.bias'] = (out,)
    else:
        dims.update({f'{unit.prefix}.1.{k}': (out,) for k in NORM_TENSORS})
        dims[f'{unit.prefix}.1.num_batches_tracked'] = ()
    return dims


def tensor_groups(groups: ChannelGroups) -> Dict[str, Tuple[Optional[str], ...]]:
    table: Dict[str, Tuple[Optional[str], ...]] = OrderedDict()
    for unit in groups.units:
        table.update(_unit_tensors(unit))
    return table


def _check_coverage(model: nn.Module, groups: ChannelGroups) -> None:
    covered = set(tensor_groups(groups))
    state = model.state_dict()
    left = [k for k in state if k not in covered]
    unknown = [k for k in covered if k not in state]
    if left or unknown:
        raise ValueError(f'cannot prune this model: tensors outside the known FastDepth structure {left[:6]}, '
                         f'expected but absent {unknown[:6]}')


def filter_norms(model: nn.Module, groups: ChannelGroups) -> Dict[str, Tensor]:
    """Per group, the L2 norm of each output channel's filters over all its producers (NetAdapt, sec. 3.2.2)."""
    state = model.state_dict()
    norms: Dict[str, Tensor] = {}
    for group in groups.widths:
        squares = sum(state[f'{u.conv}.weight'].detach().double().flatten(1).pow(2).sum(1)
                      for u in groups.producers(group))
        norms[group] = squares.sqrt()
    return norms


def group_slopes(model: nn.Module, groups: ChannelGroups, example: Tensor) -> Dict[str, float]:
    """MACs one channel of each group costs, from the flop counter's per-module counts on ``example``."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example, mode='tensor')
    counts = {name.split('.', 1)[1]: sum(c.values()) / 2 for name, c in counter.get_flop_counts().items()
              if '.' in name}
    modules = dict(model.named_modules())
    slopes = {g: 0.0 for g in groups.widths}
    for unit in groups.units:
        macs, conv = counts.get(unit.conv, 0.0), modules[unit.conv]
        if unit.out_group:
            slopes[unit.out_group] += macs / conv.out_channels
        if unit.in_group:
            slopes[unit.in_group] += macs / conv.in_channels
    return slopes


def prune_state_dict(state: Dict[str, Tensor], groups: ChannelGroups,
                     keep: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Slice every tensor to the kept channels of its groups (``keep``: group -> sorted channel indices)."""
    out: Dict[str, Tensor] = OrderedDict()
    for key, dims in tensor_groups(groups).items():
        value = state[key]
        for dim, group in enumerate(dims):
            if group is not None and group in keep:
                value = value.index_select(dim, keep[group])
        out[key] = value.clone()
    return out


def widths_of(groups: ChannelGroups, model: nn.Module, keep: Optional[Dict[str, Tensor]] = None) -> dict:
    """``{'backbone': [14 encoder widths], 'head': [decoder stage widths]}`` after keeping ``keep``."""
    width = {g: (len(keep[g]) if keep and g in keep else w) for g, w in groups.widths.items()}
    member_of = {name: g for g, names in groups.layers.items() for name in names}
    backbone = [width[member_of[f'E{i}']] for i in range(len(model.backbone.features))]
    head = [width[member_of[f'D{j}']] for j in range(len(model.head.stages))]
    return dict(backbone=backbone, head=head)


def model_cfg_with_widths(model_cfg: dict, widths: dict) -> dict:
    """A copy of a FastDepth model config with per-layer encoder widths and decoder channels."""
    cfg = copy.deepcopy(dict(model_cfg))
    cfg['backbone'] = dict(cfg['backbone'], widths=list(widths['backbone']))
    cfg['head'] = dict(cfg['head'], channels=list(widths['head']))
    return cfg


@dataclass
class PruneStep:
    group: str
    layers: List[str]
    width_before: int
    width_after: int
    macs: int
    params: int
    score: float


def _build(model_cfg: dict, state: Dict[str, Tensor]) -> nn.Module:
    from ..registry import TASKS
    model = TASKS.build(model_cfg)
    model.load_state_dict(state, strict=True)
    return model.eval()


def prune_fastdepth(model: nn.Module, model_cfg: dict, target_macs: float, input_shape: Sequence[int],
                    step: float = 0.025, divisor: int = 8, min_channels: int = 8, criterion: str = 'magnitude',
                    calibration: Optional[Tensor] = None,
                    log: Optional[Callable[[str], None]] = None) -> Tuple[nn.Module, dict, List[PruneStep]]:
    """Prune ``model`` until its MACs at ``input_shape`` (C, H, W) are at most ``target_macs``.

    Args:
        model / model_cfg: the trained model and the config dict it was built from (``cfg.model``).
        step: the MACs to save per iteration, as a fraction of the initial MACs (NetAdapt's resource reduction
            schedule; the last step saves only what is left to the target).
        divisor: widths are kept multiples of it (8 suits vector units; 1 = any width).
        min_channels: no layer gets narrower than this.
        criterion: ``'magnitude'`` (data-free) or ``'distortion'`` (needs ``calibration``: a ``B x C x H x W``
            batch of preprocessed images); see the module docstring.

    Returns the pruned model (eval mode), its widths (``{'backbone': [...], 'head': [...]}``) and the steps.
    """
    if criterion not in ('magnitude', 'distortion'):
        raise ValueError(f"criterion must be 'magnitude' or 'distortion', got {criterion!r}")
    if criterion == 'distortion' and calibration is None:
        raise ValueError("criterion 'distortion' needs calibration images")
    if not 0 < step <= 1 or divisor < 1 or min_channels < 1:
        raise ValueError(f'need 0 < step <= 1, divisor >= 1 and min_channels >= 1, got {step}, {divisor}, '
                         f'{min_channels}')
    log = log or (lambda message: None)
    channel_groups(model)   # fails early on networks it cannot prune
    model = copy.deepcopy(model).eval()
    example = torch.zeros(1, *input_shape)

    def macs_of(net: nn.Module) -> int:
        return count_macs(lambda: net(example, mode='tensor'))

    initial = macs_of(model)
    if target_macs >= initial:
        raise ValueError(f'the model already has {initial / 1e9:.4f} GMACs, not more than the target '
                         f'{target_macs / 1e9:.4f} G')
    reference = None
    if calibration is not None:
        with torch.no_grad():
            reference = model(calibration, mode='tensor')
    macs, steps = initial, []
    log(f'start: {initial / 1e9:.4f} GMACs, {sum(p.numel() for p in model.parameters()):,} parameters; '
        f'target {target_macs / 1e9:.4f} G')
    while macs > target_macs:
        groups = channel_groups(model)
        norms = filter_norms(model, groups)
        slopes = group_slopes(model, groups, example)
        budget = min(step * initial, macs - target_macs)
        best = None
        for group, width in groups.widths.items():
            if slopes[group] <= 0:
                continue
            new_width = width - math.ceil(budget / slopes[group])
            new_width = new_width // divisor * divisor
            if new_width < max(min_channels, 1):
                continue
            order = torch.argsort(norms[group], descending=True)
            kept = torch.sort(order[:new_width]).values
            removed = order[new_width:]
            if criterion == 'magnitude':
                energy = norms[group].pow(2)
                score = float(energy[removed].sum() / energy.sum().clamp_min(1e-24))
                candidate = None
            else:
                candidate = _build(model_cfg_with_widths(model_cfg, widths_of(groups, model, {group: kept})),
                                   prune_state_dict(model.state_dict(), groups, {group: kept}))
                with torch.no_grad():
                    output = candidate(calibration, mode='tensor')
                score = float((output - reference).abs().mean() / reference.abs().mean().clamp_min(1e-12))
            if best is None or score < best[0]:
                best = (score, group, kept, candidate)
        if best is None:
            raise RuntimeError(f'cannot reach {target_macs / 1e9:.4f} GMACs: every layer is at its minimum width '
                               f'({min_channels} channels, multiples of {divisor}); stopped at {macs / 1e9:.4f} G')
        score, group, kept, candidate = best
        widths = widths_of(groups, model, {group: kept})
        if candidate is None:
            candidate = _build(model_cfg_with_widths(model_cfg, widths),
                               prune_state_dict(model.state_dict(), groups, {group: kept}))
        before = groups.widths[group]
        model, macs = candidate, macs_of(candidate)   # re-measured with the counter after every step
        steps.append(PruneStep(group, groups.layers[group], before, len(kept), macs,
                               sum(p.numel() for p in model.parameters()), score))
        log(f'step {len(steps)}: {"+".join(groups.layers[group])} {before} -> {len(kept)} channels, '
            f'{macs / 1e9:.4f} GMACs ({criterion} score {score:.4f})')
    return model, widths_of(channel_groups(model), model), steps
