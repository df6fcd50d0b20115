"""torchvision ``deeplabv3_mobilenet_v3_large`` / ``lraspp_mobilenet_v3_large`` checkpoints -> our Segmentor keys.

The backbone (``backbone.<i>.block.<j>...``, torchvision's IntermediateLayerGetter over ``features``) goes through
``backbones.converters.torchvision_mobilenet_to_ours``; the heads are renamed by the tables below. Use with the
configs ``deeplabv3_mobilenetv3-large_*`` / ``lraspp_mobilenetv3-large_*`` (same architecture).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Dict, List, Tuple

from pathlib import Path

from torch import Tensor

from backbones.converters import register_converter, torchvision_mobilenet_to_ours

StateDict = Dict[str, Tensor]
CONFIGS = Path(__file__).resolve().parents[2] / 'configs'


def _segmentor_target(config: str, classifier: str):
    """The model config of ``configs/<config>`` with the source's class count (and no auxiliary head when the
    source has none)."""
    def target(state_dict: StateDict) -> dict:
        from mmengine.config import Config
        model = Config.fromfile(str(CONFIGS / config)).model.to_dict()
        weight = state_dict.get(classifier)
        if isinstance(weight, Tensor):
            model['num_classes'] = int(weight.shape[0])
        if model.get('aux_head') is not None and not any(k.startswith('aux_classifier.') for k in state_dict):
            model['aux_head'] = None
        return model
    return target

# (torchvision pattern, our replacement); BN/conv sub-keys follow the matched prefix unchanged
_DEEPLAB_HEAD: List[Tuple[str, str]] = [
    (r'^classifier\.0\.convs\.(\d+)\.(0|1)\.', r'neck.branches.\1.\2.'),  # 1x1 and atrous branches
    (r'^classifier\.0\.project\.(0|1)\.', r'neck.project.\1.'),
    (r'^classifier\.1\.', 'head.conv.0.'),
    (r'^classifier\.2\.', 'head.conv.1.'),
    (r'^classifier\.4\.', 'head.classifier.'),
    (r'^aux_classifier\.0\.', 'aux_head.conv.0.'),
    (r'^aux_classifier\.1\.', 'aux_head.conv.1.'),
    (r'^aux_classifier\.4\.', 'aux_head.classifier.'),
]
_LRASPP_HEAD: List[Tuple[str, str]] = [
    (r'^classifier\.cbr\.(0|1)\.', r'head.cbr.\1.'),
    (r'^classifier\.scale\.1\.', 'head.scale.1.'),
    (r'^classifier\.(low|high)_classifier\.', r'head.\1_classifier.'),
]


def _split_backbone(state_dict: StateDict) -> Tuple[StateDict, StateDict]:
    backbone, rest = OrderedDict(), OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            backbone['features.' + key[len('backbone.'):]] = value
        else:
            rest[key] = value
    if not backbone:
        raise KeyError('not a torchvision segmentation checkpoint: no `backbone.*` keys')
    return backbone, rest


def _rename(rest: StateDict, table: List[Tuple[str, str]], pooling_branch: int = -1) -> StateDict:
    out: StateDict = OrderedDict()
    for key, value in rest.items():
        pool = re.match(r'^classifier\.0\.convs\.(\d+)\.(1|2)\.(.+)$', key)
        if pool and int(pool.group(1)) == pooling_branch:  # ASPPPooling: [pool, conv, bn, relu]
            out[f'neck.branches.{pool.group(1)}.conv.{int(pool.group(2)) - 1}.{pool.group(3)}'] = value
            continue
        for pattern, replacement in table:
            if re.match(pattern, key):
                out[re.sub(pattern, replacement, key)] = value
                break
        else:
            raise KeyError(f'unexpected key {key} in the torchvision checkpoint')
    return out


@register_converter('deeplabv3_mobilenet_v3_large',
                    target=_segmentor_target('deeplabv3_mobilenetv3-large_30e_coco-voc.py', 'classifier.4.weight'))
def deeplabv3_mobilenet_v3_large_to_ours(state_dict: StateDict) -> StateDict:
    """torchvision DeepLabV3-MobileNetV3-Large (with or without ``aux_classifier``) -> our Segmentor."""
    backbone, rest = _split_backbone(state_dict)
    branches = {int(m.group(1)) for k in rest for m in [re.match(r'^classifier\.0\.convs\.(\d+)\.', k)] if m}
    out = torchvision_mobilenet_to_ours(backbone, prefix='backbone.')
    out.update(_rename(rest, _DEEPLAB_HEAD, pooling_branch=max(branches) if branches else -1))
    return out


@register_converter('lraspp_mobilenet_v3_large',
                    target=_segmentor_target('lraspp_mobilenetv3-large_30e_coco-voc.py',
                                             'classifier.low_classifier.weight'))
def lraspp_mobilenet_v3_large_to_ours(state_dict: StateDict) -> StateDict:
    """torchvision LR-ASPP-MobileNetV3-Large -> our Segmentor."""
    backbone, rest = _split_backbone(state_dict)
    out = torchvision_mobilenet_to_ours(backbone, prefix='backbone.')
    out.update(_rename(rest, _LRASPP_HEAD))
    return out
