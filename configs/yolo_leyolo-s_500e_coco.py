# LeYOLO-Small (Hollard et al., 2024): the Nano recipe and parts at backbone width 1.33 (channels capped at 576,
# scaled, rounded up to a multiple of 8: P3/P4/P5 = 48/88/128). Published: 35.2 mAP at 480, 38.2 at 640.
_base_ = ['./yolo_leyolo-n_500e_coco.py']
model = dict(backbone=dict(arch='s'))
