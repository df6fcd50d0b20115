"""``tools/convert_weights.py --arch ssdlite320_mobilenet_v3_large``: torchvision's SSDLite320 -> our Detector.

torchvision splits its MobileNetV3 into ``backbone.features.0`` (layers up to and including the expansion of the
first stride-32 block, ``c4``) and ``backbone.features.1`` (the rest of that block, then the remaining layers);
we put the layers back into one MobileNetV3 ``features`` list, rename them with the backbone converter, and map
``backbone.extra`` -> ``neck.extra`` and the two prediction heads -> ``head.cls_preds`` / ``head.reg_preds``.
The class head keeps torchvision's 91 columns (background + 90 COCO category slots): our head class ``c`` is
torchvision's label ``c + 1``.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Dict

from pathlib import Path

from torch import Tensor

from backbones.converters import register_converter, torchvision_mobilenet_to_ours

CONFIG = Path(__file__).resolve().parents[2] / 'configs' / 'ssdlite_mobilenetv3-large_660e_coco.py'

_FIRST = re.compile(r'^backbone\.features\.0\.(\d+)\.(.+)$')
_SECOND = re.compile(r'^backbone\.features\.1\.(\d+)\.(.+)$')
_HEAD = re.compile(r'^head\.(classification|regression)_head\.module_list\.(\d+)\.(0\.\d+|1)\.(.+)$')


def _backbone_as_mobilenet(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Keys of torchvision's SSDLite feature extractor -> keys of a plain torchvision MobileNetV3 ``features``."""
    first = [int(m.group(1)) for m in map(_FIRST.match, state_dict) if m]
    if not first:
        raise KeyError('not a torchvision SSDLite MobileNet state dict: no backbone.features.0.* keys')
    c4 = max(first)  # the expansion conv of the first stride-32 block
    out: Dict[str, Tensor] = OrderedDict()
    for key, value in state_dict.items():
        m = _FIRST.match(key)
        if m:
            i, rest = int(m.group(1)), m.group(2)
            out[f'features.{c4}.block.0.{rest}' if i == c4 else f'features.{i}.{rest}'] = value
            continue
        m = _SECOND.match(key)
        if m:
            k, rest = int(m.group(1)), m.group(2)
            if k == 0:  # the rest of block c4: depthwise, SE, projection
                j, rest = rest.split('.', 1)
                out[f'features.{c4}.block.{int(j) + 1}.{rest}'] = value
            else:
                out[f'features.{c4 + k}.{rest}'] = value
    return out


def ssdlite_target(state_dict: Dict[str, Tensor]) -> dict:
    """Our SSDLite320 model config (``configs/ssdlite_mobilenetv3-large_660e_coco.py``) sized for the source.

    torchvision's COCO checkpoint has 91 class columns (our ``num_classes=90`` + background); a checkpoint with
    another count gets a model with that count and no COCO label map.
    """
    from mmengine.config import Config
    model = Config.fromfile(str(CONFIG)).model.to_dict()
    columns = state_dict.get('head.classification_head.module_list.0.1.weight')
    anchors = state_dict.get('head.regression_head.module_list.0.1.weight')
    if isinstance(columns, Tensor) and isinstance(anchors, Tensor) and anchors.shape[0] % 4 == 0:
        num_classes = int(columns.shape[0]) // (int(anchors.shape[0]) // 4) - 1
        if num_classes != model['num_classes']:
            model.update(num_classes=num_classes, label_map=None, classes=None, cat_ids=None)
    return model


@register_converter('ssdlite320_mobilenet_v3_large', target=ssdlite_target)
def torchvision_ssdlite_to_ours(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """A torchvision ``ssdlite320_mobilenet_v3_large`` state dict -> our ``Detector`` state dict."""
    out: Dict[str, Tensor] = torchvision_mobilenet_to_ours(_backbone_as_mobilenet(state_dict), prefix='backbone.')
    out = OrderedDict((k, v) for k, v in out.items() if not k.startswith('head.'))
    for key, value in state_dict.items():
        if key.startswith('backbone.extra.'):
            out['neck.extra.' + key[len('backbone.extra.'):]] = value
            continue
        m = _HEAD.match(key)
        if m:
            kind, level, part, rest = m.groups()
            branch = 'cls_preds' if kind == 'classification' else 'reg_preds'
            name = 'depthwise.' + part[2:] if part.startswith('0.') else 'pointwise'
            out[f'head.{branch}.{level}.{name}.{rest}'] = value
        elif not key.startswith('backbone.features.'):
            raise KeyError(f'unexpected key {key} in a torchvision SSDLite state dict')
    return out
