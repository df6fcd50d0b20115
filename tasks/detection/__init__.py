"""SSDLite detection: default boxes, matcher, box coder, loss, post-processing, the Detector and its converter;
YOLO-style anchor-free detection (LeYOLO) in ``tasks.detection.yolo``."""
import heads.ssdlite  # noqa: F401  (registers SSDLiteHead)
import necks.ssdlite  # noqa: F401  (registers SSDLiteNeck)
from .anchors import DefaultBoxGenerator
from .box_coder import DeltaXYWHCoder
from .matcher import BACKGROUND, IGNORE, SSDMatcher
from .loss import SSDLoss
from .postprocess import SSDPostProcessor
from .model import DetDataPreprocessor, Detector
from .converter import torchvision_ssdlite_to_ours
from . import yolo  # noqa: E402  (registers the YOLO-style parts)
from .yolo import YOLODetector, YOLOLoss, YOLOPostProcessor, TaskAlignedAssigner

__all__ = ['DefaultBoxGenerator', 'DeltaXYWHCoder', 'SSDMatcher', 'BACKGROUND', 'IGNORE', 'SSDLoss',
           'SSDPostProcessor', 'DetDataPreprocessor', 'Detector', 'torchvision_ssdlite_to_ours', 'yolo', 'YOLODetector',
           'YOLOLoss', 'YOLOPostProcessor', 'TaskAlignedAssigner']
