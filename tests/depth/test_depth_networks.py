"""MobileNetV1 encoder and NNConv5 decoder: shapes, reference parameter counts, skips, options."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from backbones import BACKBONES, MobileNetV1
from heads import HEADS
from heads.nnconv5 import NNConv5Decoder


def test_mobilenet_v1_taps_at_strides_2_to_32():
    net = MobileNetV1(width_mult=0.25, out_indices=(0, 1, 2, 3, 4))
    assert net.feature_names == ['stage0', 'stage1', 'stage2', 'stage3', 'stage4']
    assert net.strides == [2, 4, 8, 16, 32]
    assert net.out_channels == [16, 32, 64, 128, 256]
    outs = net(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, c, 64 // s, 64 // s) for c, s in zip(net.out_channels, net.strides)]


def test_mobilenet_v1_parameter_count_equals_the_reference():
    # Keras' MobileNet (alpha 1.0) without its 1x1 classifier conv: 4,231,976 trainable - 1,025,000 = 3,206,976;
    # its non-trainable BN statistics: 21,888 (= 2 x 10,944 BN channels)
    net = MobileNetV1(width_mult=1.0)
    assert sum(p.numel() for p in net.parameters()) == 3_206_976
    assert sum(b.numel() for n, b in net.named_buffers() if 'running' in n) == 21_888
    assert net.out_channels == [1024] and net.strides == [32]


def test_mobilenet_v1_options():
    net = BACKBONES.build(dict(type='MobileNetV1', width_mult=0.25, out_indices=(2, 4), output_stride=8))
    assert net.strides == [8, 8]
    assert [tuple(o.shape[-2:]) for o in net(torch.randn(1, 3, 64, 64))] == [(8, 8), (8, 8)]
    with pytest.raises(ValueError, match='out_indices'):
        MobileNetV1(out_indices=(3, 1))
    with pytest.raises(ValueError, match='output_stride'):
        MobileNetV1(output_stride=4)
    frozen = MobileNetV1(width_mult=0.25, frozen_stages=1).train()
    layer_of_stage1 = frozen.stage_ends[1]
    assert not any(p.requires_grad for p in frozen.features[:layer_of_stage1 + 1].parameters())
    assert all(p.requires_grad for p in frozen.features[layer_of_stage1 + 1:].parameters())
    assert not frozen.features[0].training and frozen.features[-1].training
    norm_eval = MobileNetV1(width_mult=0.25, norm_eval=True).train()
    assert all(not m.training for m in norm_eval.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_nnconv5_structure_and_output_at_input_size():
    encoder = MobileNetV1(out_indices=(0, 1, 2, 4))
    decoder = HEADS.build(dict(type='NNConv5Decoder', in_channels=encoder.out_channels, in_strides=encoder.strides))
    # five stages of 5x5 depthwise + 1x1 pointwise, 1024 -> 512 -> 256 -> 128 -> 64 -> 32, then 1x1 to depth
    widths = [(s.depthwise[0].in_channels, s.pointwise[0].out_channels) for s in decoder.stages]
    assert widths == [(1024, 512), (512, 256), (256, 128), (128, 64), (64, 32)]
    assert all(s.depthwise[0].kernel_size == (5, 5) and s.depthwise[0].groups == s.depthwise[0].in_channels
               for s in decoder.stages)
    assert decoder.final.in_channels == 32 and decoder.final.out_channels == 1
    assert len(decoder.skip_proj) == 0  # MobileNetV1 widths match: plain additive skips, as in the paper
    assert decoder.skip_sources == {1: 2, 2: 1, 3: 0}  # stage outputs at strides 8, 4, 2
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = decoder(encoder(torch.randn(1, 3, 224, 224)))
    assert out.shape == (1, 1, 224, 224)
    # unpruned MobileNet-NNConv5 with skips: 0.74 GMACs (the pruned FastDepth: 0.37)
    assert abs(counter.get_total_flops() / 2e9 - 0.737) < 0.005


def test_skips_are_added():
    decoder = NNConv5Decoder([8, 16, 32, 64], [2, 4, 8, 32], channels=(32, 16, 16, 16, 8)).eval()
    feats = [torch.randn(1, c, 64 // s, 64 // s) for c, s in zip([8, 16, 32, 64], [2, 4, 8, 32])]
    # stage 1 (16 wide, stride 8) gets the 32-channel feature and stage 3 (16, stride 2) the 8-channel one
    # through 1x1 projections; stage 2 (16, stride 4) adds the 16-channel feature directly
    assert set(decoder.skip_proj) == {'1', '3'}
    base = decoder(feats)
    for i in range(3):
        changed = [f.clone() for f in feats]
        changed[i] += 1.0
        assert not torch.allclose(decoder(changed), base), f'the skip from feature {i} has no effect'


def test_nnconv5_checks_its_inputs():
    with pytest.raises(ValueError, match='in_strides'):
        NNConv5Decoder([16, 32], in_strides=[2, 4, 32])
    with pytest.raises(ValueError, match='stride 8'):
        NNConv5Decoder([16, 32, 64], in_strides=[2, 4, 32])
    with pytest.raises(ValueError, match='at least one'):
        NNConv5Decoder([])
    no_skip = NNConv5Decoder([64], in_strides=[32], channels=(16, 16, 8, 8, 8), skip_strides=())
    assert no_skip([torch.randn(1, 64, 2, 2)]).shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match='expects 1 features'):
        no_skip([torch.randn(1, 64, 2, 2)] * 2)


def test_mobilenet_v1_init_weights_reads_backbone_and_full_model_checkpoints(tmp_path):
    source = MobileNetV1(width_mult=0.25)
    for p in source.parameters():
        torch.nn.init.normal_(p)
    torch.save(source.state_dict(), tmp_path / 'backbone.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}}, tmp_path / 'model.pth')
    for name in ('backbone.pth', 'model.pth'):
        target = MobileNetV1(width_mult=0.25, pretrained=str(tmp_path / name))
        target.init_weights()
        for (k, a), b in zip(source.state_dict().items(), target.state_dict().values()):
            assert torch.equal(a, b), f'{name}: {k} was not loaded'
