"""Map timm checkpoints of FasterNet, InceptionNeXt and MobileNetV4-conv onto our modules (same architecture).

``tools/convert_weights.py --arch <timm model name> SRC DST``: SRC is a timm state dict, of the classifier
(``timm.create_model(name)``) or of its ``features_only`` version (whose keys read ``stages_0`` for ``stages.0``).
Every tensor is renamed, none copied or reshaped, so the strict check of ``convert_state_dict`` (every source
tensor used, every target tensor filled) holds; the result has ``backbone.*`` and, for a classifier, ``head.*`` keys
fitting ``configs/classifier_<name>_imagenet.py``.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Callable, Dict, List, Tuple

from torch import Tensor

from .converters import register_converter

StateDict = Dict[str, Tensor]
Rules = List[Tuple[str, str]]


def _normalise(key: str) -> str:
    """timm ``features_only`` (FeatureListNet) names flatten the first level: ``stages_0`` -> ``stages.0``."""
    return re.sub(r'^(stages|stem)_(\d+)\.', r'\1.\2.', key)


def _rename(source: StateDict, rename: Callable[[str, StateDict], str]) -> StateDict:
    out: StateDict = OrderedDict()
    for key, value in source.items():
        new = rename(_normalise(key), source)
        if new is None:
            raise KeyError(key)
        out[new] = value
    return out


def _apply(rules: Rules, key: str):
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return None


_FASTERNET_RULES: Rules = [
    (r'^patch_embed\.proj\.(.+)$', r'backbone.features.0.0.\1'),
    (r'^patch_embed\.norm\.(.+)$', r'backbone.features.0.1.\1'),
    (r'^conv_head\.(.+)$', r'head.hidden.\1'),
    (r'^classifier\.(.+)$', r'head.fc.\1'),
]


def fasternet_timm_to_ours(source: StateDict) -> StateDict:
    """timm ``fasternet_t*`` -> ``FasterNet`` (+ ``PreLogitsClsHead``)."""
    def rename(key: str, _: StateDict):
        m = re.match(r'^stages\.(\d+)\.downsample\.(reduction|norm)\.(.+)$', key)
        if m:
            return f'backbone.features.{int(m.group(1)) + 1}.0.{0 if m.group(2) == "reduction" else 1}.{m.group(3)}'
        m = re.match(r'^stages\.(\d+)\.blocks\.(\d+)\.(.+)$', key)
        if m:
            stage, block, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            index = block + (1 if stage > 0 else 0)  # our stage Sequential starts with the merge conv
            rest = _apply([(r'^spatial_mixing\.partial_conv3\.(.+)$', r'pconv.conv.\1'),
                           (r'^mlp\.0\.(.+)$', r'mlp.0.0.\1'), (r'^mlp\.1\.(.+)$', r'mlp.0.1.\1'),
                           (r'^mlp\.3\.(.+)$', r'mlp.1.\1')], rest)
            return None if rest is None else f'backbone.features.{stage + 1}.{index}.{rest}'
        return _apply(_FASTERNET_RULES, key)
    return _rename(source, rename)


_INCEPTION_NEXT_RULES: Rules = [
    (r'^stem\.0\.(.+)$', r'backbone.features.0.0.\1'),
    (r'^stem\.1\.(.+)$', r'backbone.features.0.1.\1'),
    (r'^head\.fc1\.(.+)$', r'head.hidden.\1'),
    (r'^head\.norm\.(.+)$', r'head.norm.\1'),
    (r'^head\.fc2\.(.+)$', r'head.fc.\1'),
]
_META_NEXT_BLOCK: Rules = [
    (r'^token_mixer\.dwconv_hw\.(.+)$', r'mixer.square.\1'), (r'^token_mixer\.dwconv_w\.(.+)$', r'mixer.band_w.\1'),
    (r'^token_mixer\.dwconv_h\.(.+)$', r'mixer.band_h.\1'), (r'^norm\.(.+)$', r'norm.\1'),
    (r'^mlp\.fc1\.(.+)$', r'mlp.0.\1'), (r'^mlp\.fc2\.(.+)$', r'mlp.2.\1'), (r'^gamma$', 'gamma'),
]


def inception_next_timm_to_ours(source: StateDict) -> StateDict:
    """timm ``inception_next_*`` -> ``InceptionNeXt`` (+ ``PreLogitsClsHead``)."""
    def rename(key: str, _: StateDict):
        m = re.match(r'^stages\.(\d+)\.downsample\.([01])\.(.+)$', key)
        if m:
            return f'backbone.features.{int(m.group(1)) + 1}.downsample.{("norm", "conv")[int(m.group(2))]}.' \
                   f'{m.group(3)}'
        m = re.match(r'^stages\.(\d+)\.blocks\.(\d+)\.(.+)$', key)
        if m:
            rest = _apply(_META_NEXT_BLOCK, m.group(3))
            return None if rest is None else f'backbone.features.{int(m.group(1)) + 1}.blocks.{m.group(2)}.{rest}'
        return _apply(_INCEPTION_NEXT_RULES, key)
    return _rename(source, rename)


_MNV4_RULES: Rules = [
    (r'^conv_stem\.(.+)$', r'backbone.features.0.0.\1'),
    (r'^bn1\.(.+)$', r'backbone.features.0.1.\1'),
    (r'^conv_head\.(.+)$', r'head.hidden.\1'),
    (r'^norm_head\.(.+)$', r'head.norm.\1'),
    (r'^classifier\.(.+)$', r'head.fc.\1'),
]


def mobilenetv4_timm_to_ours(source: StateDict) -> StateDict:
    """timm ``mobilenetv4_conv_*`` -> ``MobileNetV4`` (+ ``PreLogitsClsHead``)."""
    def rename(key: str, src: StateDict):
        m = re.match(r'^blocks\.(\d+)\.(\d+)\.(.+)$', key)
        if not m:
            return _apply(_MNV4_RULES, key)
        stage, block, rest = int(m.group(1)), m.group(2), m.group(3)
        prefix = f'backbone.features.{stage + 1}.{block}.'
        fused = f'blocks.{stage}.{block}.conv_exp.weight' in src
        if fused:  # EdgeResidual: conv_exp/bn1 then conv_pwl/bn2
            new = _apply([(r'^conv_exp\.(.+)$', r'expand.0.\1'), (r'^bn1\.(.+)$', r'expand.1.\1'),
                          (r'^conv_pwl\.(.+)$', r'project.0.\1'), (r'^bn2\.(.+)$', r'project.1.\1')], rest)
        else:
            sub = re.match(r'^(dw_start|pw_exp|dw_mid|pw_proj)\.(conv|bn)\.(.+)$', rest)
            if sub:
                ours = dict(dw_start='start', pw_exp='expand', dw_mid='mid', pw_proj='project')[sub.group(1)]
                new = f'{ours}.{0 if sub.group(2) == "conv" else 1}.{sub.group(3)}'
            else:  # ConvBnAct: conv/bn1
                new = _apply([(r'^conv\.(.+)$', r'0.\1'), (r'^bn1\.(.+)$', r'1.\1')], rest)
        return None if new is None else prefix + new
    return _rename(source, rename)


def _classifier_target(backbone: dict, head: dict) -> Callable[[StateDict], dict]:
    """The ImageClassifier of configs/classifier_<name>_imagenet.py, class count from the source's last layer."""
    def target(source: StateDict) -> dict:
        last = [v for k, v in source.items() if re.match(r'^(classifier|head\.fc2)\.weight$', k)]
        num_classes = int(last[0].shape[0]) if last else 1000
        return dict(type='ImageClassifier', backbone=backbone, head=dict(head, num_classes=num_classes))
    return target


#: timm name -> (converter, our backbone config, our head config); the heads as the papers' classifiers
TIMM_CLASSIFIERS = {
    **{name: (fasternet_timm_to_ours, dict(type='FasterNet', arch=name),
              dict(type='PreLogitsClsHead', hidden_channels=1280, act_layer=act))
       for name, act in (('fasternet_t0', 'gelu'), ('fasternet_t1', 'gelu'), ('fasternet_t2', 'relu'))},
    'inception_next_atto': (inception_next_timm_to_ours, dict(type='InceptionNeXt', arch='inception_next_atto'),
                            dict(type='PreLogitsClsHead', hidden_channels=960, hidden_layer='linear',
                                 hidden_bias=True, norm='ln', norm_first=False, act_layer='gelu')),
    **{name: (mobilenetv4_timm_to_ours, dict(type='MobileNetV4', arch=name),
              dict(type='PreLogitsClsHead', hidden_channels=1280, norm='bn', act_layer='relu'))
       for name in ('mobilenetv4_conv_small', 'mobilenetv4_conv_medium')},
}
for _name, (_fn, _backbone, _head) in TIMM_CLASSIFIERS.items():
    register_converter(_name, target=_classifier_target(_backbone, _head))(_fn)
