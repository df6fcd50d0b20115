"""Datasets: each returns plain sample dicts with the keys of DESIGN.md (img, gt_*, meta)."""
from .sr_folder import SRImageFolder, build_pipeline
from .detection_base import DetectionDataset, validate_boxes  # noqa: F401  (detection data)
from .coco import CocoDetection  # noqa: F401
from .voc import VOC_CLASSES, VOCDetection  # noqa: F401
from .yolo import YOLODetection  # noqa: F401
from .nyu import NYUDepthV2  # noqa: F401  (issue 4)

__all__ = ['SRImageFolder', 'build_pipeline']
from .voc_seg import VOCSegmentation  # noqa: F401,E402  (issue 3)
from .cityscapes import CityscapesSegmentation  # noqa: F401,E402
from .coco_seg import CocoVOCSegmentation  # noqa: F401,E402
from .brats import BraTSDataset, SyntheticBraTS  # noqa: F401,E402  (issue 5)
