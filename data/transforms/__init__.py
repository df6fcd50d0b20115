"""Per-task transform pipelines (albumentations where it fits) and the colour/resize helpers they use."""
from .color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from .resize import bicubic_downscale, bicubic_resize, mod_crop
from .paired import PairedFlipRotate, PairedRandomCrop
from .albu import Albumentations, build_albu
from .detection import (SSDExpand, SSDMinIoURandomCrop, SSDPhotometricDistortion,  # noqa: F401  (detection)
                        ssd_test_pipeline, ssd_train_pipeline)
from .depth import DepthResize, FastDepthAugment, FastDepthResizeCrop  # noqa: F401  (issue 4)

__all__ = ['rgb_to_y', 'rgb_to_ycbcr', 'ycbcr_to_rgb', 'bicubic_downscale', 'bicubic_resize', 'mod_crop',
           'PairedFlipRotate', 'PairedRandomCrop', 'Albumentations', 'build_albu']
from .segmentation import SegTestResize, SegTrainAugment  # noqa: F401,E402  (issue 3)
from .volumetric import RandomIntensityShiftScale, RandomVolumeFlip, RandomVolumePatch  # noqa: F401,E402  (issue 5)
