"""Tiled and resolution-capped inference: the same output as the whole image, with bounded memory."""
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from data.transforms import bicubic_resize
from data.transforms.color import rgb_to_ycbcr, rgb_to_y, ycbcr_to_rgb
from tasks.tiling import (ReceptiveField, bicubic_upscale_region, downscale_to_max_pixels, fit_max_pixels,
                          iter_tiles, receptive_field, set_max_pixels, tiled_apply, upsample_argmax)


def espcn(scale: int, color: str = 'y', tile: int = 16):
    from tasks.super_resolution import SuperResolver
    torch.manual_seed(scale)
    model = SuperResolver(backbone=dict(type='ESPCNFeatures'), head=dict(type='SubPixelHead'), scale=scale,
                          color=color, test_cfg=dict(tile=tile))
    return model.eval()


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_espcn_margin_comes_from_its_layers(scale):
    field = receptive_field(espcn(scale).backbone, espcn(scale).head)
    assert field == ReceptiveField(margin=4, stride=1, scale=Fraction(scale))  # 5x5, 3x3, 3x3: 2 + 1 + 1


def test_receptive_field_of_strided_and_dilated_layers():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1),
                        nn.Conv2d(4, 4, 3, padding=2, dilation=2), nn.BatchNorm2d(4),
                        nn.Conv2d(4, 4, 1), nn.PixelShuffle(2))
    # 1 + 1 (at stride 1) + 2 (at stride 2) * 2 = 6 input pixels; tiles start on multiples of 2; scale 2 / 2 = 1
    assert receptive_field(net) == ReceptiveField(margin=6, stride=2, scale=Fraction(1))
    assert receptive_field(net[:3]).scale == Fraction(1, 2)
    with pytest.raises(ValueError, match='MaxPool2d'):
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2)))
    with pytest.raises(ValueError, match='same'):
        receptive_field(nn.Conv2d(1, 1, 3, padding=0))


def test_tiles_cover_the_image_once_with_clamped_margins():
    tiles = list(iter_tiles(37, 50, tile=16, margin=4))
    seen = np.zeros((37, 50), int)
    for t in tiles:
        seen[t.target()] += 1
        rows, cols = t.source()
        assert rows.start >= 0 and cols.start >= 0 and rows.stop <= 37 and cols.stop <= 50
        assert (t.top, t.left) == (min(4, t.y0), min(4, t.x0))
    assert (seen == 1).all() and len(tiles) == 3 * 4


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_tiled_network_equals_the_whole_image(scale):
    model = espcn(scale)
    x = torch.rand(1, 1, 45, 67)  # odd sizes, 3 x 5 tiles of 16
    field = receptive_field(model.backbone, model.head)
    with torch.no_grad():
        whole = model(x, mode='tensor')
        tiled = tiled_apply(lambda t: model(t, mode='tensor'), x, 16, field)
        short = tiled_apply(lambda t: model(t, mode='tensor'), x, 16,
                            ReceptiveField(field.margin - 1, field.stride, field.scale))
    assert tiled.shape == whole.shape == (1, 1, 45 * scale, 67 * scale)
    assert (tiled - whole).abs().max() < 1e-6
    assert (short - whole).abs().max() > 1e-4  # one pixel less context is not enough: the margin is tight


def test_tiled_strided_network_equals_the_whole_image():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                        nn.Tanh(), nn.Conv2d(8, 8, 3, padding=2, dilation=2), nn.PixelShuffle(2)).eval()
    field = receptive_field(net)
    x = torch.rand(2, 2, 38, 54)
    with torch.no_grad():
        assert (tiled_apply(net, x, 11, field) - net(x)).abs().max() < 1e-6  # tile 11 -> 10, aligned to stride 2


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_bicubic_region_equals_the_region_of_the_whole_upscale(scale):
    image = np.random.default_rng(scale).integers(0, 256, (29, 41, 3), dtype=np.uint8)
    whole = bicubic_resize(image, (29 * scale, 41 * scale))
    for t in iter_tiles(29, 41, tile=8, margin=0):
        np.testing.assert_array_equal(bicubic_upscale_region(image, t, scale), whole[t.target(scale)])


def reference_sr(model, lr):
    """The whole-image ESPCN prediction, written out as the model did before tiling (float64 colour)."""
    x = torch.from_numpy(rgb_to_y(lr).astype(np.float32))[None, None] / 255.0
    with torch.no_grad():
        y = (model(x, mode='tensor').clamp(0, 1) * 255.0)[0, 0].double().numpy()
    ycbcr = rgb_to_ycbcr(bicubic_resize(lr, y.shape))
    ycbcr[..., 0] = y
    return np.clip(np.round(ycbcr_to_rgb(ycbcr)), 0, 255).astype(np.uint8), y


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_tiled_sr_predict_equals_whole_image_prediction(scale):
    model = espcn(scale, tile=16)
    lr = np.random.default_rng(1).integers(0, 256, (37, 51, 3), dtype=np.uint8)
    data = model.data_preprocessor([dict(img=lr, meta={})], False)
    result = model(**data, mode='predict')[0]
    image, y = reference_sr(model, lr)
    assert result['y'].dtype == np.float32 and result['image'].shape == image.shape
    assert np.abs(result['y'] - y).max() < 1e-4  # [0, 255] scale
    diff = np.abs(result['image'].astype(int) - image)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # uint8 rounding of ~1e-6 differences, if any
    whole = espcn(scale, tile=0)
    np.testing.assert_array_equal(whole(**data, mode='predict')[0]['image'], image)


def test_tiled_sr_predict_on_rgb_models():
    model = espcn(3, color='rgb', tile=8)
    lr = np.random.default_rng(2).integers(0, 256, (19, 23, 3), dtype=np.uint8)
    data = model.data_preprocessor([dict(img=lr, meta={})], False)
    with torch.no_grad():
        whole = (model(data['inputs'], mode='tensor').clamp(0, 1) * 255)[0].permute(1, 2, 0).numpy()
    result = model(**data, mode='predict')[0]
    assert 'y' not in result
    assert np.abs(result['image'].astype(float) - np.round(whole)).max() <= 1


def test_sr_float_luma_only_up_to_luma_max_pixels():
    from tasks.super_resolution import SuperResolver
    lr = np.random.default_rng(3).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    for limit, kept in ((30 * 36, True), (30 * 36 - 1, False)):
        torch.manual_seed(0)
        model = SuperResolver(backbone=dict(type='ESPCNFeatures'), head=dict(type='SubPixelHead'), scale=3,
                              test_cfg=dict(luma_max_pixels=limit)).eval()
        result = model(**model.data_preprocessor([dict(img=lr, meta={})], False), mode='predict')[0]
        assert ('y' in result) == kept and result['image'].shape == (30, 36, 3)


def test_sr_test_cfg_is_checked():
    from tasks.super_resolution import SuperResolver
    with pytest.raises(ValueError, match='tile'):
        SuperResolver(backbone=dict(type='ESPCNFeatures'), head=dict(type='SubPixelHead'), scale=2,
                      test_cfg=dict(tiles=3))


def test_fit_and_downscale_to_max_pixels():
    assert fit_max_pixels(6000, 8000, 2048 * 1024) == (1254, 1672)  # 2,096,688 pixels <= 2,097,152
    assert fit_max_pixels(100, 200, None) == (100, 200) and fit_max_pixels(100, 200, 20000) == (100, 200)
    x = torch.rand(1, 3, 60, 80)
    assert downscale_to_max_pixels(x, 1200).shape == (1, 3, 30, 40)
    assert downscale_to_max_pixels(x, 4800) is x


@pytest.mark.parametrize('align_corners', [False, True])
def test_banded_upsample_argmax_equals_interpolate(align_corners):
    scores = torch.randn(5, 13, 17, generator=torch.Generator().manual_seed(0))
    for size in [(40, 61), (100, 33), (7, 9)]:
        ref = F.interpolate(scores[None], size=size, mode='bilinear', align_corners=align_corners)[0]
        banded = upsample_argmax(scores, size, align_corners, max_elements=5 * 61 * 3)  # 3-row bands
        top2 = ref.topk(2, dim=0).values
        clear = (top2[0] - top2[1]) > 1e-4  # pixels whose winner is not a numerical tie
        assert (banded == ref.argmax(0))[clear].all() and clear.float().mean() > 0.99


def segmentor(max_pixels):
    from tasks.segmentation import Segmentor
    torch.manual_seed(0)
    model = Segmentor(backbone=dict(type='MobileNetV2', width_mult=0.25, out_indices=(-2,), output_stride=16),
                      neck=dict(type='ASPP', channels=16), head=dict(type='DeepLabHead'), num_classes=3,
                      test_cfg=dict(max_pixels=max_pixels))
    return model.eval()


def test_segmentor_caps_the_pixels_it_runs_on():
    image = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    seen = []
    model = segmentor(2700)
    model.backbone.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    data = model.data_preprocessor([dict(img=image, meta=dict(ori_shape=(90, 120)))], False)
    assert data['inputs'].shape == (1, 3, 45, 60)  # scaled down while still uint8: 2700 pixels, same aspect
    with torch.no_grad():
        seg = model(**data, mode='predict')[0]['seg']
        ref = F.interpolate(model.inference(data['inputs']), size=(90, 120), mode='bilinear')[0].argmax(0)
    assert seg.shape == (90, 120) and seg.dtype == np.int64 and seen[-1][-2:] == (45, 60)
    np.testing.assert_array_equal(seg, ref.numpy())
    # a preprocessor that does not scale: the model scales the float input itself, to the same size
    model.data_preprocessor.max_pixels = None
    full = model.data_preprocessor([dict(img=image, meta=dict(ori_shape=(90, 120)))], False)
    assert full['inputs'].shape == (1, 3, 90, 120)
    with torch.no_grad():
        seg_model_side = model(**full, mode='predict')[0]['seg']
        small = F.interpolate(full['inputs'], size=(45, 60), mode='bilinear', antialias=True)
        ref = F.interpolate(model.inference(small), size=(90, 120), mode='bilinear')[0].argmax(0)
    assert seen[-1][-2:] == (45, 60)
    np.testing.assert_array_equal(seg_model_side, ref.numpy())
    assert (seg_model_side == seg).mean() > 0.9  # uint8 vs float scaling: the same picture up to rounding
    set_max_pixels(model, None)  # what a --max-pixels 0 flag does: no limit, in the model and its preprocessor
    assert model.max_pixels is None and model.data_preprocessor.max_pixels is None
    set_max_pixels(model, 2700)
    assert model.data_preprocessor([dict(img=image, meta={})], False)['inputs'].shape == (1, 3, 45, 60)
    with pytest.raises(ValueError, match='no max_pixels'):
        set_max_pixels(espcn(2), 100)


def test_depth_caps_the_pixels_it_runs_on():
    from tasks.depth import DepthEstimator
    torch.manual_seed(0)
    model = DepthEstimator(backbone=dict(type='MobileNetV1', width_mult=0.25, out_indices=(0, 1, 2, 4)),
                           head=dict(type='NNConv5Decoder', channels=(32, 16, 16, 8, 8)),
                           test_cfg=dict(max_pixels=64 * 48)).eval()
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    data = model.data_preprocessor([dict(img=image, meta=dict(ori_shape=(96, 128)))], False)
    result = model(**data, mode='predict')[0]
    assert result['depth'].shape == result['depth_input'].shape == (96, 128)
    with torch.no_grad():
        small = model(F.interpolate(data['inputs'], size=(48, 64), mode='bilinear', antialias=True), mode='tensor')
    ref = F.interpolate(small.clamp(model.min_depth, model.max_depth), size=(96, 128), mode='bilinear')[0, 0]
    assert np.abs(result['depth'] - ref.numpy()).max() < 1e-4
    with pytest.raises(ValueError, match='max_pixels'):
        DepthEstimator(backbone=model.backbone, head=model.head, test_cfg=dict(max_pixels=0))
