"""The segmentation configs carry the published recipes: torchvision's for the MobileNetV3 models (lr 0.01, aux head
at 10x lr, ImageNet backbone, 30 epochs, batch 32, crop 480, poly 0.9), TF DeepLab's three stages for Mobile
DeepLabv3 (ImageNet -> COCO -> VOC train_aug)."""
from pathlib import Path

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torchvision.models import mobilenet_v2, mobilenet_v3_large

from tasks import build_model, load_config
from tools.convert_weights import main as convert_weights

REPO = Path(__file__).resolve().parents[2]
V3_DEEPLAB = REPO / 'configs' / 'deeplabv3_mobilenetv3-large_30e_coco-voc.py'
V3_LRASPP = REPO / 'configs' / 'lraspp_mobilenetv3-large_30e_coco-voc.py'
V2_VOC = REPO / 'configs' / 'deeplabv3_mobilenetv2_30k_voc-aug.py'
V2_COCO = REPO / 'configs' / 'deeplabv3_mobilenetv2_100k_coco-voc.py'
V2_FINETUNE = REPO / 'configs' / 'deeplabv3_mobilenetv2_30k_voc-aug-from-coco.py'


def lr_of_parameters(config: Path) -> dict:
    """{parameter name: lr} of the optimizer mmengine builds from the config's ``optim_wrapper``."""
    cfg = load_config(str(config))
    model = build_model(cfg)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    lr_of = {id(p): group['lr'] for group in optimizer.param_groups for p in group['params']}
    decay_of = {id(p): group['weight_decay'] for group in optimizer.param_groups for p in group['params']}
    named = dict(model.named_parameters())
    assert set(lr_of) == {id(p) for p in named.values()}
    return {n: (lr_of[id(p)], decay_of[id(p)]) for n, p in named.items()}


def test_deeplabv3_mobilenetv3_aux_head_trains_at_ten_times_the_lr():
    groups = lr_of_parameters(V3_DEEPLAB)
    aux = {n: v for n, v in groups.items() if n.startswith('aux_head.')}
    rest = {n: v for n, v in groups.items() if not n.startswith('aux_head.')}
    assert aux and rest
    assert sorted({lr for lr, _ in aux.values()}) == pytest.approx([0.1])
    assert sorted({lr for lr, _ in rest.values()}) == pytest.approx([0.01])
    assert sorted({wd for _, wd in groups.values()}) == pytest.approx([1e-6])
    assert sorted({lr for lr, _ in lr_of_parameters(V3_LRASPP).values()}) == pytest.approx([0.01])


@pytest.mark.parametrize('config', [V3_DEEPLAB, V3_LRASPP])
def test_mobilenetv3_schedule_is_torchvision_s(config):
    cfg = load_config(str(config))
    assert cfg.train_cfg.max_epochs == 30
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 32
    crop = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'SegTrainAugment'][0]
    assert crop['crop_size'] == 480 and tuple(crop['scale_range']) == (0.5, 2.0)
    (poly,) = cfg.param_scheduler
    assert poly['type'] == 'PolyLR' and poly['power'] == 0.9 and poly['convert_to_iter_based']
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert cfg.model.backbone.pretrained.endswith('checkpoints/mobilenet_v3_large_imagenet.pth')
    model = build_model(cfg)
    assert model.aux_weight == 0.5   # torchvision: loss = out + 0.5 aux (DeepLabV3; LR-ASPP has no aux head)
    assert (model.aux_head is not None) == (config == V3_DEEPLAB)


@pytest.mark.parametrize('config,arch,tv_model', [(V3_DEEPLAB, 'mobilenet_v3_large', mobilenet_v3_large),
                                                  (V2_VOC, 'mobilenet_v2', mobilenet_v2)])
def test_imagenet_backbone_is_loaded_through_the_converter_and_required(tmp_path, config, arch, tv_model):
    """The converted torchvision ImageNet file initialises the backbone; a missing file stops training, named."""
    torch.manual_seed(0)
    reference = tv_model().state_dict()
    torch.save(reference, tmp_path / 'tv.pth')
    convert_weights(['--arch', arch, str(tmp_path / 'tv.pth'), str(tmp_path / 'imagenet.pth')])
    cfg = load_config(str(config))
    cfg.model.backbone.pretrained = str(tmp_path / 'imagenet.pth')
    model = build_model(cfg)
    assert not torch.equal(model.backbone.features[0][0].weight, reference['features.0.0.weight'])
    model.init_weights()   # what mmengine's Runner calls before training
    torch.testing.assert_close(model.backbone.features[0][0].weight, reference['features.0.0.weight'])
    converted = torch.load(tmp_path / 'imagenet.pth', weights_only=True)['state_dict']
    converted = {k[len('backbone.'):] if k.startswith('backbone.') else k: v for k, v in converted.items()}
    ours = model.backbone.state_dict()
    shared = [k for k in ours if k in converted]
    assert len(shared) == len(ours)   # every tensor of the (trimmed) backbone comes from the ImageNet file
    for key in shared:
        torch.testing.assert_close(ours[key], converted[key], msg=key)
    cfg.model.backbone.pretrained = str(tmp_path / 'absent' / 'mobilenet_imagenet.pth')
    with pytest.raises(FileNotFoundError, match='absent/mobilenet_imagenet.pth does not exist'):
        build_model(cfg).init_weights()


def test_mobile_deeplabv3_stages_chain_imagenet_coco_voc():
    """ImageNet backbone -> COCO (VOC classes) stage -> VOC train_aug fine-tune loading the COCO stage's last file."""
    voc, coco, finetune = (load_config(str(c)) for c in (V2_VOC, V2_COCO, V2_FINETUNE))
    assert voc.model.backbone.pretrained.endswith('checkpoints/mobilenet_v2_imagenet.pth')
    assert coco.model.backbone.pretrained == voc.model.backbone.pretrained
    assert coco.train_dataloader.dataset.type == 'CocoVOCSegmentation'
    assert coco.train_dataloader.dataset.pipeline[0]['crop_size'] == 513
    assert finetune.model.backbone.pretrained is None
    assert finetune.load_from == f'work_dirs/{V2_COCO.stem}/iter_{coco.train_cfg.max_iters}.pth'
    assert finetune.train_dataloader.dataset.split == 'train_aug' and finetune.val_dataloader.dataset.split == 'val'
    assert finetune.optim_wrapper.optimizer.lr < voc.optim_wrapper.optimizer.lr
    for cfg in (voc, coco, finetune):
        assert cfg.model.backbone.output_stride == 16 and cfg.model.neck.dilations == ()
