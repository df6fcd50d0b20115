"""Per-task transform pipelines (albumentations where it fits) and the colour/resize helpers they use."""
from .color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from .resize import bicubic_downscale, bicubic_resize, mod_crop
from .paired import PairedFlipRotate, PairedRandomCrop
from .albu import Albumentations, build_albu
from .detection import (SSDExpand, SSDMinIoURandomCrop, SSDPhotometricDistortion, ssd_test_pipeline,
                        ssd_train_pipeline)
from .segmentation import SegTestResize, SegTrainAugment
from .depth import DepthResize, FastDepthAugment, FastDepthResizeCrop
from .volumetric import RandomIntensityShiftScale, RandomVolumeFlip, RandomVolumePatch

__all__ = ['rgb_to_y', 'rgb_to_ycbcr', 'ycbcr_to_rgb', 'bicubic_downscale', 'bicubic_resize', 'mod_crop',
           'PairedFlipRotate', 'PairedRandomCrop', 'Albumentations', 'build_albu', 'SSDExpand', 'SSDMinIoURandomCrop',
           'SSDPhotometricDistortion', 'ssd_test_pipeline', 'ssd_train_pipeline', 'SegTestResize', 'SegTrainAugment',
           'DepthResize', 'FastDepthAugment', 'FastDepthResizeCrop', 'RandomIntensityShiftScale', 'RandomVolumeFlip',
           'RandomVolumePatch']
from .yolo_aug import HSVJitter, Mosaic, RandomAffine, filter_boxes, yolo_train_pipeline  # noqa: E402

__all__ += ['HSVJitter', 'Mosaic', 'RandomAffine', 'filter_boxes', 'yolo_train_pipeline']
from .letterbox import LetterBox, letterbox_params, letterbox_to_original  # noqa: E402

__all__ += ['LetterBox', 'letterbox_params', 'letterbox_to_original']
