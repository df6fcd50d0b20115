# LeYOLO-Medium (Hollard et al., 2024): width 1.33 and deeper backbone stages (3/6/5 blocks at /8, /16, /32).
# The neck's stacks are deepened like the backbone's stages, 4 blocks instead of 3 (our reading): 2,367,496
# parameters (published 2.37 M) and 2.663 G MACs at 640 (published 2.794 G: 4.7% short, docs/detection.md); with 3
# blocks it has 2.19 M / 2.43 G. Published: 39.3 mAP at 640, 41.0 at 768.
_base_ = ['./yolo_leyolo-n_500e_coco.py']
model = dict(backbone=dict(arch='m'), neck=dict(num_blocks=4))
