"""The official FastDepth state dict (MobileNetSkipAdd keys) converts exactly onto the paper config's model."""
import runpy

import pytest
import torch

from backbones.converters import WEIGHT_CONVERTERS
from official_layout import OfficialLayout, randomise
from tasks import build_model, load_config
from tasks.depth.converter import fastdepth_to_ours, fastdepth_widths, official_key_map

PAPER = 'configs/fastdepth_mobilenetv1_20e_nyu.py'


@pytest.fixture(scope='module')
def official():
    torch.manual_seed(0)
    return randomise(OfficialLayout())


def test_official_key_map_covers_the_official_layout_one_to_one(official):
    mapping = official_key_map()
    assert list(mapping) == list(official.state_dict())          # every official tensor, in order
    assert len(set(mapping.values())) == len(mapping) == 228     # 14 + 5 + 1 layers: 38 conv+BN units x 6
    assert WEIGHT_CONVERTERS['fastdepth'] is fastdepth_to_ours


def test_converted_weights_give_the_official_networks_output(official, repo, tmp_path):
    source = tmp_path / 'fastdepth_state_dict.pth'
    torch.save({f'module.{k}': v for k, v in official.state_dict().items()}, source)   # as DataParallel saves
    convert = runpy.run_path(str(repo / 'tools' / 'convert_weights.py'), run_name='convert')
    converted = convert['main'](['--arch', 'fastdepth', str(source), str(tmp_path / 'ours.pth')])
    model = build_model(repo / PAPER, str(tmp_path / 'ours.pth'))       # strict: every tensor filled
    assert set(converted) == set(model.state_dict())
    x = torch.rand(2, 3, 64, 96)                      # the official input: rgb / 255
    with torch.no_grad():
        expected = official(x)
        ours = model(x, mode='tensor')
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
    # ReLU6 matters with these weights: the same weights in a ReLU encoder give another output
    cfg = load_config(repo / PAPER)
    cfg.model.backbone.act_layer = 'ReLU'
    relu_model = build_model(cfg, str(tmp_path / 'ours.pth'))
    with torch.no_grad():
        assert (relu_model(x, mode='tensor') - expected).abs().max() > 1e-2


def test_conversion_is_strict(official):
    state = dict(official.state_dict())
    with pytest.raises(ValueError, match='not in the official'):
        fastdepth_to_ours(dict(state, **{'decode_conv7.0.weight': torch.zeros(1)}))
    missing = dict(state)
    del missing['conv7.3.weight']
    with pytest.raises(ValueError, match=r'missing: \[.conv7.3.weight.\]'):
        fastdepth_to_ours(missing)
    wrong = dict(state, **{'conv4.3.weight': torch.zeros(200, 128, 1, 1)})
    with pytest.raises(ValueError, match=r'conv5.0.weight has shape \(256, 1, 3, 3\), expected \(200, 1, k, k\)'):
        fastdepth_to_ours(wrong)
    with pytest.raises(ValueError, match=r'conv4.4.running_var has shape \(256,\), expected \(200,\)'):
        fastdepth_to_ours(wrong)
    # a checkpoint from PyTorch < 0.4.1 has no BN batch counters: those (only) are filled
    old = {k: v for k, v in state.items() if not k.endswith('num_batches_tracked')}
    converted = fastdepth_to_ours(old)
    assert len(converted) == 228
    assert all(int(v) == 0 for k, v in converted.items() if k.endswith('num_batches_tracked'))


def test_pruned_official_widths_convert_and_load_into_a_config_of_those_widths(repo):
    encoder = [16, 48, 64, 72, 136, 120, 224, 208, 200, 176, 192, 184, 512, 472]
    decoder = [256, 120, 72, 48, 32]                   # skips: decoder 1/2/3 = encoder 5/3/1
    official = randomise(OfficialLayout(encoder, decoder), seed=1)
    converted = fastdepth_to_ours(official.state_dict())
    widths = fastdepth_widths(converted)
    assert widths == dict(backbone=encoder, head=decoder)
    cfg = load_config(repo / PAPER)
    cfg.model.backbone.widths = widths['backbone']
    cfg.model.head.channels = widths['head']
    model = build_model(cfg)
    model.load_state_dict(converted, strict=True)
    assert len(model.head.skip_proj) == 0                 # plain additions, as in the official network
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), official(x), rtol=1e-4, atol=1e-5)


def test_mismatched_skip_widths_are_not_the_official_layout():
    # decode_conv4 with 48 outputs cannot be added to conv1's 64 channels
    state = OfficialLayout(decoder=[512, 256, 128, 48, 32]).state_dict()
    with pytest.raises(ValueError, match='decode_conv4 outputs 48 channels but the skip from conv1 has 64'):
        fastdepth_to_ours(state)
