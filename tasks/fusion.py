"""Inference-time Conv+BatchNorm folding (``tasks.fuse``) and mmengine's Efficient ConvBN for frozen-BN training.

In eval mode a BatchNorm is a fixed per-channel affine map ``y = (x - mean) / sqrt(var + eps) * gamma + beta``; when
it directly follows a convolution it folds into that convolution's weight and bias
(``torch.nn.utils.fusion.fuse_conv_bn_eval``), removing one memory pass per block. Every backbone, neck and head
here builds its conv blocks as ``nn.Sequential`` (torchvision's ``Conv2dNormActivation`` /
``Conv3dNormActivation``, MBConv and reversible blocks included), so folding the adjacent (conv, BN) pairs of every
``Sequential`` covers them. What cannot fold is left as it is and listed by ``unfused_norms``: GroupNorm and
InstanceNorm (the 3D U-Net's default) depend on the input, and a BatchNorm not preceded by a convolution in the same
``Sequential`` has nothing to fold into.

``efficient_conv_bn_eval`` (mmengine; Xiong et al., 2023, "Tune-Mode ConvBN Blocks For Efficient Transfer
Learning") computes a conv followed by an eval-mode BN as one convolution with on-the-fly folded weights while
still training both: for fine-tuning with frozen BN statistics (``norm_eval=True``). The Runner turns it on from
the config key ``efficient_conv_bn_eval = ['backbone']``; ``enable_efficient_conv_bn_eval`` does the same in code.
"""
from __future__ import annotations

import copy
from operator import attrgetter
from typing import List, Sequence, Union

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

_CONV_BN = ((nn.Conv1d, 1), (nn.Conv2d, 2), (nn.Conv3d, 3),
            (nn.ConvTranspose1d, 1), (nn.ConvTranspose2d, 2), (nn.ConvTranspose3d, 3))
_NORMS = (_BatchNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, nn.LayerNorm)


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    if not isinstance(conv, nn.modules.conv._ConvNd) or not isinstance(bn, _BatchNorm):
        return False
    if bn.running_mean is None or bn.running_var is None:  # track_running_stats=False: batch statistics
        return False
    out_channels = conv.out_channels
    return bn.num_features == out_channels and type(conv) in {c for c, _ in _CONV_BN}


def to_channels_last(model: nn.Module) -> nn.Module:
    """2D convolution weights in NHWC (``torch.channels_last``): the convolutions then run channels-last (oneDNN's
    preferred layout) and pass that layout on. Measured on this 2-core machine (benchmarks/deploy.py): fused
    MobileNetV2 0.63x and SSDLite 0.70x eager with it, 0.82x and 0.86x without. 3D convolutions are left alone."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
    return model


def fuse(model: nn.Module, inplace: bool = True, channels_last: bool = False) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution (in an ``nn.Sequential``) into it.

    The model is put in eval mode (folding is exact only with running statistics); the folded BN becomes
    ``nn.Identity`` so module indices and ``state_dict`` prefixes of the other layers stay. Returns the model
    (a fused deep copy when ``inplace=False``). ``unfused_norms(model)`` lists what is left. ``channels_last``
    also stores the 2D convolution weights channels-last (``to_channels_last``).
    """
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    for parent in list(model.modules()):
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = parent._modules[first], parent._modules[second]
            if conv is None or bn is None or not _foldable(conv, bn):
                continue
            transpose = isinstance(conv, nn.modules.conv._ConvTransposeNd)
            parent._modules[first] = fuse_conv_bn_eval(conv, bn, transpose=transpose)
            parent._modules[second] = nn.Identity()
    model.fused = True
    return to_channels_last(model) if channels_last else model


def unfused_norms(model: nn.Module) -> List[str]:
    """Names of the normalisation layers still in ``model`` (after ``fuse``: those that cannot be folded)."""
    return [name for name, m in model.named_modules() if isinstance(m, _NORMS)]


def enable_efficient_conv_bn_eval(model: nn.Module, modules: Union[str, Sequence[str]] = ('backbone',)) -> nn.Module:
    """mmengine's Efficient ConvBN on the named sub-modules (what the Runner does for the config key
    ``efficient_conv_bn_eval``): every conv followed by an eval-mode BN runs as one convolution with the BN folded
    into its weights on the fly, gradients flowing to the conv and BN parameters as before."""
    from mmengine.model.efficient_conv_bn_eval import turn_on_efficient_conv_bn_eval
    names = [modules] if isinstance(modules, str) else list(modules)
    for name in names:
        attrgetter(name)(model)  # a clear AttributeError for a wrong name before tracing
    turn_on_efficient_conv_bn_eval(model, names)
    return model


__all__ = ['fuse', 'to_channels_last', 'unfused_norms', 'enable_efficient_conv_bn_eval']
