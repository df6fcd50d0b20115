# SSDLite on MobileDet-CPU at 320x320 (Xiong et al., "MobileDets", CVPR 2021, COCO table / the TF object detection
# API's ssdlite_mobiledet_cpu_320x320_coco_sync_4x4.config: "0.45B MulAdds, 4.21M Parameters", 24.0 mAP on COCO).
# Backbone endpoints C4 (72 ch, stride 16) and C5 (144 ch, stride 32), four SSDLite extra layers (512, 256, 256,
# 128), separable box predictors, 6 maps, 3 default boxes on the first and 6 on the others (ratios 1, 2, 1/2, 3,
# 1/3), 91 class columns as TF's head (90 COCO category slots + background; `label_map` drops the 10 unused ones).
# `python3 tools/benchmark.py configs/ssdlite_mobiledet-cpu_400k_coco.py` measures 4.18M parameters and 0.455G MACs
# (docs/backbones.md has the block-by-block table).
# Schedule: the TF recipe (400k iterations of batch 512, SGD momentum 0.9, cosine lr 0.8 with 2k warm-up
# iterations from 0.13333, weight decay 4e-5 on convolutions) needs 32 accelerators; here the data pipeline, loss
# and schedule are those of ssdlite_mobilenetv2_660e_coco.py (torchvision's 660-epoch recipe), so "400k" names the
# paper's length, not this file's: change `train_cfg` / `param_scheduler` to retrain at the published scale.
_base_ = ['./ssdlite_mobilenetv2_660e_coco.py']
norm = dict(type='bn', eps=0.001, momentum=0.03)
model = dict(
    num_classes=90, label_map={{_base_.coco91_label_map}},
    # BatchNorm of the backbone: TF's eps 0.01 / decay 0.99 (the MobileDet default)
    backbone=dict(_delete_=True, type='MobileDet', arch='cpu', out_indices=('c4', 'c5')),
)
