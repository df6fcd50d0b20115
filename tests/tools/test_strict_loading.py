"""Strict checkpoint loading on every path (issue 13, items 1 and 2): Runner (test/train load_from, resume),
``build_model``, backbone ``pretrained``, and ``tools/convert_weights.py``."""
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from backbones import MobileNetV2
from backbones.checkpoint_io import CheckpointMismatchError, check_state_dict, split_load_options
from backbones.converters import convert_state_dict, load_backbone_weights
from tasks import build_model, load_config
from tasks.checkpoint import find_resumable_checkpoint
from tasks.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools'))
import convert_weights  # noqa: E402

X2, X3 = REPO / 'configs' / 'espcn_x2_500e_t91.py', REPO / 'configs' / 'espcn_x3_500e_t91.py'
X2_WEIGHTS = REPO / 'checkpoints' / 'espcn_x2_t91.pth'


def test_check_state_dict_names_missing_unexpected_and_shapes():
    expected = {'a.weight': torch.zeros(2, 3), 'b.weight': torch.zeros(4), 'head.w': torch.zeros(5)}
    given = {'a.weight': torch.ones(2, 3), 'b.weight': torch.ones(3), 'extra': torch.ones(1)}
    with pytest.raises(CheckpointMismatchError) as info:
        check_state_dict(expected, given, 'ck.pth')
    message = str(info.value)
    assert 'ck.pth' in message and '1 missing key(s): head.w' in message
    assert '1 unexpected key(s): extra' in message and 'b.weight (3,) vs (4,)' in message
    # allowed: missing / other-shaped keys matching allow_missing, extra keys matching allow_unexpected
    kept = check_state_dict(expected, given, 'ck.pth', allow_missing=['head.*', 'b.*'], allow_unexpected=['ext*'])
    assert list(kept) == ['a.weight']
    with pytest.raises(CheckpointMismatchError, match='holds no tensors'):
        check_state_dict(expected, {'epoch': 3}, 'empty.pth')


def test_split_load_options_leaves_a_normal_init_cfg():
    rest, options = split_load_options(dict(allow_missing=['head.*']))
    assert rest is None and options == dict(allow_missing=['head.*'], allow_unexpected=[])
    rest, options = split_load_options([dict(type='Kaiming', layer='Conv2d'), dict(allow_unexpected='x.*')])
    assert rest == [dict(type='Kaiming', layer='Conv2d')] and options['allow_unexpected'] == ['x.*']


def test_test_tool_refuses_a_checkpoint_of_another_scale(capsys):
    """The issue's command: it printed PSNR 9.27 and exited 0."""
    import test as test_tool
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: test_tool.main([str(X3), str(X2_WEIGHTS)]))
    assert info.value.code == 2
    out = capsys.readouterr()
    assert out.err.strip().splitlines() == [
        f'error: checkpoint {X2_WEIGHTS} does not fit the model: 2 shape mismatch(es) (checkpoint vs the model): '
        'head.conv.weight (4, 32, 3, 3) vs (9, 32, 3, 3), head.conv.bias (4,) vs (9,). (Keys that may be missing '
        "are listed in the model config: init_cfg=dict(allow_missing=['head.*']).)"]
    assert 'System environment' not in out.out + out.err  # refused before the Runner starts
    assert 'PSNR' not in out.out


def test_build_model_refuses_empty_and_unconverted_torchvision_checkpoints(tmp_path):
    torch.save({'state_dict': {}, 'meta': {}}, tmp_path / 'empty.pth')
    with pytest.raises(CheckpointMismatchError, match='empty.pth holds no tensors'):
        build_model(X3, str(tmp_path / 'empty.pth'))
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), tmp_path / 'tv.pth')
    cfg = dict(default_scope='mobilevision', model=dict(
        type='ImageClassifier', backbone=dict(type='MobileNetV3', arch='small'),
        head=dict(type='LinearClsHead', num_classes=1000, hidden_channels=1024)))
    with pytest.raises(CheckpointMismatchError, match='tv.pth does not fit.*convert it first'):
        build_model(cfg, str(tmp_path / 'tv.pth'))


def test_allow_missing_in_the_config_permits_a_new_head():
    cfg = load_config(X3)
    cfg.model.init_cfg = dict(allow_missing=['head.*'])
    model = build_model(cfg, str(X2_WEIGHTS))
    x2 = torch.load(X2_WEIGHTS, weights_only=True)['state_dict']
    first = next(k for k in x2 if k.startswith('backbone.'))
    assert torch.equal(model.state_dict()[first], x2[first])
    assert model.head.conv.weight.shape[0] == 9  # kept its own (initial) weights
    model.init_weights()  # mmengine's init_weights does not trip over the option


def _runner(cfg_path, tmp_path, **init_cfg):
    from mmengine.runner import Runner
    model = load_config(cfg_path).model.to_dict()
    if init_cfg:
        model['init_cfg'] = init_cfg
    return Runner(model=model, work_dir=str(tmp_path / 'work'), default_scope='mobilevision')


def test_runner_load_from_and_resume_are_strict(tmp_path):
    runner = _runner(X3, tmp_path)
    with pytest.raises(CheckpointMismatchError, match='espcn_x2_t91.pth does not fit'):
        runner.load_checkpoint(str(X2_WEIGHTS))
    allowed = _runner(X3, tmp_path, allow_missing=['head.*'])
    allowed.load_checkpoint(str(X2_WEIGHTS))
    x2 = torch.load(X2_WEIGHTS, weights_only=True)['state_dict']
    first = next(k for k in x2 if k.startswith('backbone.'))
    assert torch.equal(allowed.model.state_dict()[first], x2[first])
    allowed._resume = True  # resuming restores the whole model: the allow-list does not apply
    with pytest.raises(CheckpointMismatchError, match='head.conv.weight'):
        allowed.load_checkpoint(str(X2_WEIGHTS))


def test_backbone_pretrained_is_strict(tmp_path):
    torch.save(MobileNetV2(width_mult=0.5).state_dict(), tmp_path / 'half.pth')
    with pytest.raises(CheckpointMismatchError, match='half.pth does not fit the backbone.*shape mismatch'):
        MobileNetV2(pretrained=str(tmp_path / 'half.pth')).init_weights()
    torch.save({'state_dict': {'backbone.features.0.0.weight': torch.zeros(32, 3, 3, 3)}}, tmp_path / 'part.pth')
    with pytest.raises(CheckpointMismatchError, match='missing key'):
        load_backbone_weights(MobileNetV2(), str(tmp_path / 'part.pth'))


def test_torchvision_weights_fill_a_backbone_whose_tail_was_cut(tmp_path):
    """Mobile DeepLab drops MobileNetV2's last conv: the torchvision checkpoint's features.18 is not an error."""
    tv = torchvision.models.mobilenet_v2(weights=None)
    torch.save(tv.state_dict(), tmp_path / 'mobilenet_v2.pth')
    cfg = load_config(REPO / 'configs' / 'deeplabv3_mobilenetv2_30k_voc-aug.py')
    cfg.model.backbone.pretrained = str(tmp_path / 'mobilenet_v2.pth')
    model = build_model(cfg)
    model.backbone.init_weights()
    assert len(model.backbone.features) == 18
    assert torch.equal(model.backbone.features[17].project[0].weight, tv.features[17].conv[2].weight)


@pytest.fixture(scope='module')
def torchvision_ssdlite(tmp_path_factory) -> Path:
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large
    path = tmp_path_factory.mktemp('tv') / 'ssd.pth'
    torch.save(ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).state_dict(), path)
    return path


def test_test_tool_refuses_an_unconverted_torchvision_ssdlite(torchvision_ssdlite, capsys):
    """The issue: all COCO numbers 0.000 and exit 0."""
    import test as test_tool
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: test_tool.main([str(REPO / 'configs' / 'ssdlite_mobilenetv3-large_660e_coco.py'),
                                        str(torchvision_ssdlite)]))
    assert info.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith(f'error: checkpoint {torchvision_ssdlite} does not fit the model:')
    assert 'It looks like a torchvision checkpoint: convert it first with tools/convert_weights.py' in line


def test_convert_weights_refuses_the_wrong_arch(tmp_path, torchvision_ssdlite):
    """The issue's command: an SSDLite checkpoint converted as mobilenet_v2 gave '476 tensors -> 0 tensors'."""
    with pytest.raises(ValueError, match=r'ssd.pth: the mobilenet_v2 converter left 476 of 476 tensors unused'):
        convert_weights.main(['--arch', 'mobilenet_v2', str(torchvision_ssdlite), str(tmp_path / 'o.pth')])
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), tmp_path / 'small.pth')
    with pytest.raises(CheckpointMismatchError, match='small.pth converted as mobilenet_v3_large does not fit'):
        convert_weights.main(['--arch', 'mobilenet_v3_large', str(tmp_path / 'small.pth'), str(tmp_path / 'o.pth')])
    assert not (tmp_path / 'o.pth').exists()
    convert_weights.main(['--arch', 'mobilenet_v3_small', str(tmp_path / 'small.pth'), str(tmp_path / 'o.pth')])
    assert (tmp_path / 'o.pth').exists()


def test_converter_that_drops_tensors_is_refused():
    source = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    source['fc_extra.weight'] = torch.zeros(1)  # a tensor the converter does not map
    with pytest.raises(ValueError, match=r'left 1 of \d+ tensors unused \(fc_extra.weight\)'):
        convert_state_dict('mobilenet_v3_small', source, 'src.pth')


def test_find_resumable_checkpoint_says_which_was_skipped(tmp_path, capsys):
    good, bad = tmp_path / 'epoch_1.pth', tmp_path / 'epoch_2.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}}, good)
    bad.write_bytes(b'truncated')
    (tmp_path / 'last_checkpoint').write_text(str(bad))
    assert find_resumable_checkpoint(tmp_path) == str(good)
    err = capsys.readouterr().err
    assert f'skipping checkpoint {bad}: cannot read checkpoint' in err


def test_mmengine_pretrained_init_cfg_is_strict():
    """``init_cfg=dict(type='Pretrained', checkpoint=...)``, mmengine's own way to initialise from a file."""
    cfg = load_config(X3)
    cfg.model.init_cfg = dict(type='Pretrained', checkpoint=str(X2_WEIGHTS))
    with pytest.raises(CheckpointMismatchError, match='espcn_x2_t91.pth does not fit'):
        build_model(cfg).init_weights()
    cfg.model.init_cfg = dict(type='Pretrained', checkpoint=str(X2_WEIGHTS), allow_missing=['head.*'])
    model = build_model(cfg)
    model.init_weights()
    x2 = torch.load(X2_WEIGHTS, weights_only=True)['state_dict']
    first = next(k for k in x2 if k.startswith('backbone.'))
    assert torch.equal(model.state_dict()[first], x2[first])
