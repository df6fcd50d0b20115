"""YOLO-style anchor-free detection (LeYOLO, issue 14): box coding, task-aligned assignment, loss, model parts."""
from .coder import bbox_to_distance, dfl_expectation, distance_to_bbox, make_anchor_points
from .assigner import TaskAlignedAssigner
from .loss import YOLOLoss, distribution_focal_loss
from .hooks import CloseMosaicHook
from .postprocess import YOLOPostProcessor
from .model import YOLODetector, decode_head_outputs, flatten_head_outputs, to_original
from .schedule import YOLOBiasWarmupHook
from .ema import YOLOExpEMA
