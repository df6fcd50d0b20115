"""DepthEstimator: losses, the three modes, outputs (visualisation, .npy/16-bit PNG), ONNX, configs, tools."""
import math
import runpy

import cv2
import numpy as np
import pytest
import torch

from backbones import MobileNetV1
from data.io import read_rgb
from heads import NNConv5Decoder
from tasks import TASKS, build_model
from tasks.depth import DepthEstimator, berhu_loss, l1_loss, silog_loss
from official_layout import OfficialLayout

TINY = dict(type='DepthEstimator',
            backbone=dict(type='MobileNetV1', width_mult=0.25, out_indices=(0, 1, 2, 4)),
            head=dict(type='NNConv5Decoder', channels=(128, 64, 32, 16, 8), bias_init=2.0))


def tiny_model():
    return TASKS.build(TINY)


def test_losses_on_hand_computed_values():
    target = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0]).view(1, 1, 1, 5)
    pred = torch.tensor([1.0, 2.0, 3.0, 10.0, 50.0]).view(1, 1, 1, 5)   # the last pixel is invalid
    assert l1_loss(pred, target).item() == pytest.approx((0 + 1 + 2 + 9) / 4)
    c = 0.2 * 9
    assert berhu_loss(pred, target).item() == pytest.approx((0 + 1 + (4 + c * c) / (2 * c) + (81 + c * c) / (2 * c)) / 4)
    twice = torch.tensor([[2.0, 4.0], [6.0, 0.5]]).view(1, 1, 2, 2)
    assert silog_loss(twice, twice / 2).item() == pytest.approx(0.5 * math.log(2) ** 2, rel=1e-5)  # d = log 2
    assert silog_loss(twice * 3, twice).item() == pytest.approx(0.5 * math.log(3) ** 2, rel=1e-5)
    empty = torch.zeros(1, 1, 2, 2)
    assert l1_loss(twice.requires_grad_(), empty).item() == 0.0


def test_plain_python_and_config_construction_agree():
    encoder = MobileNetV1(width_mult=0.25, out_indices=(0, 1, 2, 4))
    decoder = NNConv5Decoder(encoder.out_channels, encoder.strides, channels=(128, 64, 32, 16, 8))
    model = DepthEstimator(backbone=encoder, head=decoder, losses=dict(l1=1.0, berhu=0.5, silog=0.1))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in tiny_model().parameters())
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    sample = dict(img=image, gt_depth=np.full((64, 64), 2.0, np.float32), meta=dict(ori_shape=(64, 64)))
    data = model.data_preprocessor([sample, sample], True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_l1', 'loss_berhu', 'loss_silog'}
    sum(losses.values()).backward()
    assert model.head.final.weight.grad is not None and model.backbone.features[0][0].weight.grad is not None
    with pytest.raises(ValueError, match='unknown loss'):
        DepthEstimator(backbone=encoder, head=decoder, losses='l2')


def test_preprocessor_normalises_with_imagenet_statistics():
    model = tiny_model()
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 255
    data = model.data_preprocessor([dict(img=image, meta={})], False)
    assert data['inputs'].shape == (1, 3, 8, 8)
    assert data['inputs'][0, 0, 0, 0].item() == pytest.approx((255 - 123.675) / 58.395)
    assert data['inputs'][0, 1, 0, 0].item() == pytest.approx(-116.28 / 57.12)


def test_predict_maps_depth_back_to_the_original_frame():
    model = tiny_model().eval()
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    box = (26.88, 21.12, 610.56, 458.88)       # what FastDepthResizeCrop records for a 480x640 frame
    samples = [dict(img=image, meta=dict(ori_shape=(480, 640), crop_box=box)),
               dict(img=image, meta=dict(ori_shape=(100, 150)))]
    with torch.no_grad():
        tensor = model(model.data_preprocessor(samples, False)['inputs'], mode='tensor')
        results = model(**model.data_preprocessor(samples, False), mode='predict')
    assert tensor.shape == (2, 1, 64, 64)
    cropped, whole = results
    assert cropped['depth'].shape == (480, 640) and cropped['depth'].dtype == np.float32
    assert cropped['depth_input'].shape == (64, 64)
    inside = cropped['depth'][21:459, 27:611]
    assert (inside > 0).all() and (cropped['depth'][:20] == 0).all() and (cropped['depth'][:, :26] == 0).all()
    assert whole['depth'].shape == (100, 150) and (whole['depth'] > 0).all()
    np.testing.assert_allclose(whole['depth_input'], tensor[1, 0].clamp(1e-3, 10).numpy(), rtol=1e-5)


def test_save_result_and_visualize(tmp_path):
    model = tiny_model()
    depth = np.tile(np.linspace(0.5, 8.0, 40, dtype=np.float32), (80, 1))
    depth[-1, 0] = 0.0
    written = model.save_result(dict(depth=depth), str(tmp_path / 'sub' / 'frame'))
    assert written == [str(tmp_path / 'sub' / 'frame.npy'), str(tmp_path / 'sub' / 'frame_depth_mm.png')]
    np.testing.assert_array_equal(np.load(written[0]), depth)
    png = cv2.imread(written[1], cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == (80, 40)
    np.testing.assert_array_equal(png, np.round(depth * 1000).astype(np.uint16))
    image = np.full((80, 40, 3), 128, np.uint8)
    picture = model.visualize(image, dict(depth=depth))
    assert picture.dtype == np.uint8 and picture.shape[0] == 80 and picture.shape[1] >= 80
    coloured = picture[:, -40:].astype(int)
    near, far = coloured[70, 2], coloured[70, -2]      # left = 0.9 m, right = 7.8 m (below the label)
    assert near[0] > near[2] and far[2] > far[0], 'near should be warm (red), far cold (blue)'
    


def test_onnx_export_matches_torch_in_onnxruntime(tmp_path, repo):
    import onnxruntime as ort
    model = tiny_model().eval()
    export = runpy.run_path(str(repo / 'tools' / 'export.py'), run_name='export')
    example, reference = export['export'](model, (3, 64, 64), str(tmp_path / 'fastdepth.onnx'))
    session = ort.InferenceSession(str(tmp_path / 'fastdepth.onnx'), providers=['CPUExecutionProvider'])
    (output,) = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    assert output.shape == (1, 1, 64, 64)
    np.testing.assert_allclose(output, reference[0].numpy(), rtol=1e-4, atol=1e-4)


def test_configs_build_the_paper_network_and_the_v2_option(repo):
    v1 = build_model(repo / 'configs' / 'fastdepth_mobilenetv1_20e_nyu.py')
    assert type(v1.backbone).__name__ == 'MobileNetV1' and v1.backbone.strides == [2, 4, 8, 32]
    # unpruned (pruned FastDepth: 1.34 M): the official MobileNetSkipAdd's count, its final BN included
    assert sum(p.numel() for p in v1.parameters()) == sum(p.numel() for p in OfficialLayout().parameters())
    assert sum(p.numel() for p in v1.parameters()) == 3_960_930
    v2 = build_model(repo / 'configs' / 'fastdepth_mobilenetv2_20e_nyu.py')
    assert type(v2.backbone).__name__ == 'MobileNetV2' and v2.backbone.out_channels == [16, 24, 32, 1280]
    with torch.no_grad():
        assert v2(torch.randn(1, 3, 64, 64), mode='tensor').shape == (1, 1, 64, 64)


@pytest.mark.slow
def test_infer_tool_on_an_image_and_a_video(tmp_path, repo, assets):
    config = tmp_path / 'tiny_fastdepth.py'
    config.write_text(f'model = {TINY!r}\ninfer_pipeline = [dict(type="DepthResize", size=(64, 64))]\n')
    torch.save(dict(state_dict=tiny_model().state_dict()), tmp_path / 'tiny.pth')
    infer = runpy.run_path(str(repo / 'tools' / 'infer.py'), run_name='infer')
    out = tmp_path / 'out'
    written = infer['main']([str(config), str(tmp_path / 'tiny.pth'), '--input', str(assets / 'depth' / 'rgb.png'),
                             '--output', str(out), '--save-raw'])
    assert sorted(written) == sorted(str(out / n) for n in ('rgb.png', 'rgb.npy', 'rgb_depth_mm.png'))
    assert read_rgb(out / 'rgb.png').shape[0] == 224               # input and depth side by side
    assert np.load(out / 'rgb.npy').shape == (224, 224)
    video = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 5, (80, 64))
    frame = cv2.resize(cv2.imread(str(assets / 'depth' / 'rgb.png')), (80, 64))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    written = infer['main']([str(config), str(tmp_path / 'tiny.pth'), '--input', str(video), '--output', str(out),
                             '--save-raw', '--max-frames', '2'])
    assert (out / 'clip_result.mp4').is_file()
    assert np.load(out / 'clip_000001.npy').shape == (64, 80)
