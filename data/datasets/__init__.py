"""Datasets: each returns plain sample dicts with the keys of DESIGN.md (img, gt_*, meta)."""
from .sr_folder import SRImageFolder, build_pipeline
from .detection_base import DetectionDataset, validate_boxes
from .coco import CocoDetection
from .voc import VOC_CLASSES, VOCDetection
from .yolo import YOLODetection
from .voc_seg import VOCSegmentation
from .cityscapes import CityscapesSegmentation
from .coco_seg import CocoVOCSegmentation
from .nyu import NYUDepthV2
from .brats import BraTSDataset, SyntheticBraTS

__all__ = ['SRImageFolder', 'build_pipeline', 'DetectionDataset', 'validate_boxes', 'CocoDetection', 'VOC_CLASSES',
           'VOCDetection', 'YOLODetection', 'VOCSegmentation', 'CityscapesSegmentation', 'CocoVOCSegmentation',
           'NYUDepthV2', 'BraTSDataset', 'SyntheticBraTS']
