"""The FastDepth paper config is the published network and pre-processing (Wofk et al., 2019, official code)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from backbones import MobileNetV1
from data import TRANSFORMS
from tasks import build_model, load_config
from tests.detection.test_ssd_recipe import position_image

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / 'configs' / 'fastdepth_mobilenetv1_20e_nyu.py'
V2 = REPO / 'configs' / 'fastdepth_mobilenetv2_20e_nyu.py'


@pytest.fixture(scope='module')
def paper_cfg():
    return load_config(PAPER)


@pytest.fixture(scope='module')
def paper_model(paper_cfg):
    return build_model(paper_cfg)


def activations(module: nn.Module):
    return [type(m) for m in module.modules() if isinstance(m, (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU))]


def test_encoder_uses_relu6_and_the_decoder_relu(paper_model):
    encoder = activations(paper_model.backbone)
    assert encoder == [nn.ReLU6] * 27                     # stem + 13 x (depthwise, pointwise)
    decoder = activations(paper_model.head)
    assert decoder == [nn.ReLU] * 11                      # 5 x (depthwise, pointwise) + the final layer
    assert paper_model.backbone.widths == [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]


def test_input_is_rgb_over_255_without_imagenet_statistics(paper_model):
    image = np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    inputs = paper_model.data_preprocessor([dict(img=image, meta={})], False)['inputs']
    expected = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    torch.testing.assert_close(inputs, expected, rtol=0, atol=1e-7)


def test_final_layer_is_conv_bn_relu_and_depth_is_never_negative(paper_model):
    final = paper_model.head.final
    conv, norm, act = final
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.bias is None
    assert (conv.in_channels, conv.out_channels) == (32, 1)
    assert isinstance(norm, nn.BatchNorm2d) and isinstance(act, nn.ReLU)
    model = build_model(PAPER)
    with torch.no_grad():
        model.head.final[1].bias.fill_(-0.5)             # push the pre-activation negative somewhere
        depth = model(torch.rand(1, 3, 64, 64) * 3 - 1, mode='tensor')
    assert depth.min() >= 0 and (depth == 0).any()


def coded_frame(h: int = 480, w: int = 640):
    """An image whose colour encodes each pixel's position and a depth map holding the same position."""
    y, x = np.mgrid[0:h, 0:w]
    return position_image(h, w), (1 + y * w + x).astype(np.float32)


def decode(depth: np.ndarray, h: int = 480, w: int = 640):
    """The colour of the source pixel each depth value names (invalid depths, 0, name the last pixel)."""
    index = np.round(depth).astype(np.int64) - 1
    return position_image(h, w)[index // w, index % w]


@pytest.mark.parametrize('name', ['train', 'test', 'infer'])
def test_nyu_transforms_sample_rgb_by_nearest_neighbour_like_the_depth(paper_cfg, name):
    pipeline = paper_cfg[f'{name}_pipeline']
    assert [t['interpolation'] for t in pipeline] == ['nearest']
    options = dict(pipeline[0])
    if options['type'] == 'FastDepthAugment':
        options.update(jitter=0.0, seed=3)                 # colour jitter would change the colours themselves
    transform = TRANSFORMS.build(options)
    image, depth = coded_frame()
    for _ in range(3 if name == 'train' else 1):        # several random scales / rotations / flips
        out = transform(dict(img=image.copy(), gt_depth=depth.copy(), meta={}))
        scale = out['meta'].get('depth_scale', 1.0)
        valid = out['gt_depth'] > 0
        assert out['img'].shape == (224, 224, 3) and valid.mean() > 0.9
        # every RGB pixel is the very source pixel the depth map sampled (bilinear RGB would blend neighbours)
        np.testing.assert_array_equal(out['img'][valid], decode(out['gt_depth'] * scale)[valid])


def test_linear_interpolation_stays_an_option_and_the_v2_config_keeps_it():
    image, depth = coded_frame()
    linear = TRANSFORMS.build(dict(type='FastDepthResizeCrop', interpolation='linear'))
    out = linear(dict(img=image, gt_depth=depth, meta={}))
    assert (out['img'] != decode(out['gt_depth'])).any()   # blended colours: not the depth's source pixels
    with pytest.raises(ValueError, match='interpolation'):
        TRANSFORMS.build(dict(type='DepthResize', interpolation='cubic'))
    v2 = load_config(V2)
    assert [t['interpolation'] for t in v2.train_dataloader.dataset.pipeline] == ['linear']
    assert [t['interpolation'] for t in v2.test_dataloader.dataset.pipeline] == ['linear']
    model = build_model(v2)
    assert isinstance(model.head.final, nn.Conv2d) and model.head.final.bias is not None
    assert model.data_preprocessor.std.flatten().tolist() == pytest.approx([58.395, 57.12, 57.375])


def test_mobilenet_v1_per_layer_widths():
    widths = [8, 16, 24, 24, 40, 40, 72, 64, 64, 56, 56, 48, 120, 96]
    net = MobileNetV1(widths=widths, out_indices=(0, 1, 2, 4))
    assert net.out_channels == [16, 24, 40, 96] and net.strides == [2, 4, 8, 32]
    assert [b.pointwise[0].out_channels for b in net.features[1:]] == widths[1:]
    assert [b.depthwise[0].in_channels for b in net.features[1:]] == widths[:-1]
    assert [tuple(o.shape[1:]) for o in net(torch.randn(1, 3, 64, 64))] == [(16, 32, 32), (24, 16, 16),
                                                                            (40, 8, 8), (96, 2, 2)]
    with pytest.raises(ValueError, match='14 positive'):
        MobileNetV1(widths=widths[:-1])
    with pytest.raises(ValueError, match='14 positive'):
        MobileNetV1(widths=[0] + widths[1:])
