"""tasks.fuse folds BatchNorm into convolutions without changing outputs (every config); Efficient ConvBN training
gives the plain path's loss and gradients."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torchvision.ops import Conv2dNormActivation

from tasks import build_model, load_config
from tasks.fusion import enable_efficient_conv_bn_eval, fuse, unfused_norms

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / 'configs').glob('*.py'))


def randomise_norms(model: nn.Module, seed: int = 0) -> None:
    """BN statistics and affine parameters away from their init values (else folding is an identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(n, generator=g) * 0.4)  # >= 0: ReLU outputs stay alive


def small_shape(shape):
    """The config's input size cut to at most 64 pixels (32 voxels) per side, still a multiple of 32 (16)."""
    if len(shape) == 3:
        return (shape[0], 64, 64)
    return (shape[0],) + tuple(min(s, 32) for s in shape[1:])


def flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in flat(out[k])]
    return [t for item in out for t in flat(item)]


def record_blocks(model: nn.Module, names) -> dict:
    """Outputs (cloned: later in-place ops must not change them) of the named ``Sequential`` blocks."""
    seen = {}
    for name in names:
        model.get_submodule(name).register_forward_hook(
            lambda mod, args, out, name=name: seen.setdefault(name, out.detach().clone()))
    return seen


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_fused_outputs_equal(path):
    """Final outputs and the output of every block holding a folded (conv, BN) pair equal to 1e-5 relative."""
    cfg = load_config(path)
    model = build_model(cfg)
    randomise_norms(model)
    model.eval()
    x = torch.randn(1, *small_shape(cfg.benchmark_shape))
    blocks = [name for name, m in model.named_modules() if isinstance(m, nn.Sequential)
              and any(isinstance(c, _BatchNorm) for c in m.children())]
    fused = fuse(model, inplace=False)
    n_bn = sum(isinstance(m, _BatchNorm) for m in model.modules())
    left = [m for m in fused.modules() if isinstance(m, _BatchNorm)]
    assert n_bn == 0 or len(left) < n_bn  # something folded
    for parent in fused.modules():  # nothing foldable left: no BN right after a conv in a Sequential
        if isinstance(parent, nn.Sequential):
            kids = list(parent.children())
            assert not any(isinstance(a, nn.modules.conv._ConvNd) and isinstance(b, _BatchNorm)
                           for a, b in zip(kids, kids[1:])), f'left: {unfused_norms(fused)}'
    if left:  # BNs after a token mixer (InceptionNeXt) or after pooling (MobileNetV4 head): listed, not folded
        assert set(unfused_norms(fused)) >= {n for n, m in fused.named_modules() if isinstance(m, _BatchNorm)}
    assert len(list(fused.modules())) == len(list(model.modules()))  # BN -> Identity: same layout and names
    with torch.no_grad():  # the float32 outputs: equal to 1e-5 relative
        reference = flat(model(x, mode='tensor'))
        outputs = flat(fused(x, mode='tensor'))
    assert len(outputs) == len(reference)
    for out, ref in zip(outputs, reference):
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * max(ref.abs().max().item(), 1e-3))
    # every folded block in float64 (random features can reach 1e4 before a BN, where float32 rounding alone is
    # 1e-3): the folding itself is exact
    model64 = copy.deepcopy(model).double()
    fused64 = fuse(copy.deepcopy(model64))
    ref_blocks, fused_blocks = record_blocks(model64, blocks), record_blocks(fused64, blocks)
    with torch.no_grad():
        model64(x.double(), mode='tensor'), fused64(x.double(), mode='tensor')
    assert set(ref_blocks) == set(fused_blocks) and (len(ref_blocks) > 0) == (len(blocks) > 0)  # aux heads idle
    for name in ref_blocks:
        ref = ref_blocks[name]
        torch.testing.assert_close(fused_blocks[name], ref, rtol=1e-9, atol=1e-9 * max(ref.abs().max().item(), 1e-3),
                                   msg=name)
    assert max([r.abs().max().item() for r in reference] + [r.abs().max().item() for r in ref_blocks.values()]) > 0
    if len(x.shape) == 4:  # channels-last weights (tasks.fuse(channels_last=True)): the same outputs
        fuse(fused, channels_last=True)
        with torch.no_grad():
            for out, ref in zip(flat(fused(x, mode='tensor')), reference):
                torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * max(ref.abs().max().item(), 1e-3))


def test_fuse_folds_hand_made_block_exactly():
    block = nn.Sequential(Conv2dNormActivation(2, 3, 3), nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.GroupNorm(1, 3))
    randomise_norms(block)
    block.eval()
    x = torch.randn(2, 2, 5, 5)
    ref = block(x)
    fuse(block)
    assert isinstance(block[0][1], nn.Identity) and isinstance(block[2], nn.Identity)
    assert unfused_norms(block) == ['3']  # GroupNorm depends on the input: never folded
    torch.testing.assert_close(block(x), ref, rtol=1e-5, atol=1e-6)
    # the folded conv by hand: w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta
    conv = nn.Conv2d(1, 1, 1, bias=True)
    bn = nn.BatchNorm2d(1, eps=0.0).eval()
    conv.weight.data.fill_(2.0), conv.bias.data.fill_(1.0)
    bn.running_mean.fill_(3.0), bn.running_var.fill_(4.0), bn.weight.data.fill_(0.5), bn.bias.data.fill_(1.0)
    folded = fuse(nn.Sequential(conv, bn))[0]
    assert folded.weight.item() == pytest.approx(0.5) and folded.bias.item() == pytest.approx(0.5)


def test_efficient_conv_bn_eval_same_loss_and_gradients():
    """Frozen-BN fine-tuning (norm_eval=True): Efficient ConvBN (mmengine) gives the plain loss and gradients."""
    cfg = dict(type='ImageClassifier', backbone=dict(type='MobileNetV2', width_mult=0.25, norm_eval=True),
               head=dict(type='LinearClsHead', num_classes=5, dropout=0.0))
    torch.manual_seed(0)
    plain = build_model(dict(model=cfg))
    randomise_norms(plain)
    efficient = build_model(dict(model=cfg))
    efficient.load_state_dict(plain.state_dict())
    enable_efficient_conv_bn_eval(efficient, ['backbone'])
    x, labels = torch.randn(2, 3, 64, 64), [dict(gt_label=1), dict(gt_label=3)]
    losses = []
    for model in (plain, efficient):
        model.train()
        assert all(not m.training for m in model.backbone.modules() if isinstance(m, _BatchNorm))
        loss = model(x, labels, mode='loss')['loss_cls']
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    grads = dict(efficient.named_parameters())
    for name, p in plain.named_parameters():
        assert p.grad is not None and grads[name].grad is not None, name
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert efficient.backbone.forward.__func__ is not type(efficient.backbone).forward  # the traced forward runs


def test_inferencer_fuse_gives_the_same_results(tmp_path):
    """Inferencer(fuse=True): BN folded, channels-last weights, the same scores."""
    from tasks import Inferencer
    cfg = load_config(CONFIGS[0].parent / 'classifier_mobilenetv2_1x_imagenet.py')
    plain = Inferencer(cfg)
    randomise_norms(plain.model)
    torch.save({'state_dict': plain.model.state_dict()}, tmp_path / 'w.pth')
    fused = Inferencer(cfg, str(tmp_path / 'w.pth'), fuse=True)
    assert not unfused_norms(fused.model) and getattr(fused.model, 'fused', False)
    assert fused.model.backbone.features[1].depthwise[0].weight.is_contiguous(memory_format=torch.channels_last)
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    a, b = plain(image), fused(image)
    assert a['label'] == b['label']
    np.testing.assert_allclose(b['scores'], a['scores'], rtol=1e-4, atol=1e-6)
