# LeYOLO-Medium (Hollard et al., 2024): width 1.33 and deeper backbone stages (3/6/5 blocks at /8, /16, /32).
# The neck has 4 blocks per stage instead of 3: our choice to approach the published size (2.37 M parameters,
# 2.79 G MACs at 640); with 3 the network has 2.25 M / 2.49 G. Published: 39.3 mAP at 640, 41.0 at 768.
_base_ = ['./yolo_leyolo-n_500e_coco.py']
model = dict(backbone=dict(arch='m'), neck=dict(num_blocks=4))
