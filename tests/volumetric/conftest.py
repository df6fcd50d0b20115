"""Small builders shared by the volumetric tests."""
import pytest
import torch

from backbones.reversible_unet3d import ReversibleUNet3dEncoder
from heads.unet3d import UNet3dHead
from tasks.volumetric import VolumetricSegmentor


def make_net(channels=(8, 16), depths=(1, 1), head_depths=1, expand_ratio=2, use_se=False, drop_path=0.0,
             norm_layer='gn', reversible=True) -> torch.nn.Sequential:
    encoder = ReversibleUNet3dEncoder(4, channels, depths, expand_ratio=expand_ratio, use_se=use_se,
                                      drop_path=drop_path, norm_layer=norm_layer, reversible=reversible)
    head = UNet3dHead(encoder.out_channels, 3, head_depths, expand_ratio=expand_ratio, use_se=use_se,
                      norm_layer=norm_layer, reversible=reversible, strides=encoder.strides)
    return torch.nn.Sequential(encoder, head)


def make_model(patch_size=(16, 16, 16), **kwargs) -> VolumetricSegmentor:
    net = make_net(**kwargs)
    return VolumetricSegmentor(net[0], net[1], patch_size=patch_size, progress=False)


@pytest.fixture
def tiny_model():
    return make_model
