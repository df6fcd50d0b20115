"""ESPCN as a task: shapes, a short training that lowers the loss, predictions and pictures."""
import numpy as np
import pytest
import torch

from backbones import ESPCNFeatures
from heads import SubPixelHead
from tasks import TASKS
from tasks.super_resolution import SuperResolver


def tiny(scale=3, color='y'):
    return SuperResolver(backbone=dict(type='ESPCNFeatures', channels=(16, 8)), head=dict(type='SubPixelHead'),
                         scale=scale, color=color)


def test_plain_modules_and_configs_build_the_same_model():
    a = SuperResolver(backbone=ESPCNFeatures(1, (16, 8)), head=SubPixelHead([8], scale=2), scale=2)
    b = TASKS.build(dict(type='SuperResolver', scale=2, backbone=dict(type='ESPCNFeatures', channels=(16, 8)),
                         head=dict(type='SubPixelHead')))
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]


def test_paper_architecture_sizes():
    model = SuperResolver(backbone=dict(type='ESPCNFeatures'), head=dict(type='SubPixelHead'), scale=3)
    # 5x5x1x64 + 64, 3x3x64x32 + 32, 3x3x32x9 + 9
    assert sum(p.numel() for p in model.parameters()) == 1664 + 18464 + 2601
    assert model(torch.zeros(1, 1, 10, 12), mode='tensor').shape == (1, 1, 30, 36)


@pytest.mark.slow
def test_short_training_lowers_the_loss():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = tiny(scale=2)
    # smooth random images: an SR network can learn to beat its initial output quickly
    from data.transforms import bicubic_downscale, bicubic_resize
    hrs = [bicubic_resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (32, 32)) for _ in range(8)]
    samples = [dict(img=bicubic_downscale(h, 2), gt_hr=h, meta={}) for h in hrs]
    optim = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(60):
        data = model.data_preprocessor(samples, True)
        loss = model(**data, mode='loss')['loss_mse']
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


@pytest.mark.parametrize('color', ['y', 'rgb'])
def test_predict_gives_an_image_r_times_larger(color):
    model = tiny(scale=3, color=color).eval()
    lr = np.random.default_rng(0).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    data = model.data_preprocessor([dict(img=lr, meta={})], False)
    with torch.no_grad():
        result = model(**data, mode='predict')[0]
    assert result['image'].shape == (30, 42, 3) and result['image'].dtype == np.uint8
    assert ('y' in result) == (color == 'y')
    picture = model.visualize(lr, result)
    assert picture.shape[0] == 30 and picture.shape[1] > 2 * 42


def test_shipped_x3_weights_beat_bicubic_on_set5(repo, assets):
    from tasks import Inferencer
    from data.evaluators import psnr
    from data.transforms import bicubic_downscale, bicubic_resize, mod_crop, rgb_to_y
    from data.io import read_rgb
    inferencer = Inferencer(repo / 'configs' / 'espcn_x3_500e_t91.py', repo / 'checkpoints' / 'espcn_x3_t91.pth')
    hr = mod_crop(read_rgb(assets / 'sr' / 'Set5' / 'butterfly.png'), 3)
    lr = bicubic_downscale(hr, 3)
    result = inferencer(lr)
    ours = psnr(result['y'], rgb_to_y(hr), border=3)
    bicubic = psnr(rgb_to_y(bicubic_resize(lr, hr.shape[:2])), rgb_to_y(hr), border=3)
    assert ours > bicubic + 1.5  # butterfly: ~24.0 dB bicubic, ESPCN well above
