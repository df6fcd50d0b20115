"""COCO instances converted on the fly to the 21 PASCAL VOC classes (torchvision's segmentation reference).

Only the 20 COCO categories that are VOC classes are kept, in VOC order (``COCO_TO_VOC``, the category list of
torchvision's ``references/segmentation``); each instance mask (polygons or RLE, decoded by pycocotools) paints its
VOC index, where several instances overlap the pixel becomes 255 (ignored), everything else is background 0.
For training, images whose kept annotations are missing or cover 1000 pixels or less in total are dropped (as the
reference does).
"""
from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

from ..registry import DATASETS
from .seg_base import SegmentationDataset
from .voc_seg import VOC_SEG_CLASSES

# COCO category id of each VOC class, in VOC order (0 = background)
COCO_TO_VOC = (0, 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72)


def coco_anns_to_voc_mask(coco, anns, height: int, width: int, ignore_index: int = 255) -> np.ndarray:
    """One HxW int64 VOC label map from COCO annotations (others dropped; overlaps -> ``ignore_index``)."""
    voc_index = {cat: i for i, cat in enumerate(COCO_TO_VOC) if cat}
    mask = np.zeros((height, width), np.int64)
    count = np.zeros((height, width), np.int32)
    for ann in anns:
        label = voc_index.get(ann['category_id'])
        if label is None:
            continue
        instance = coco.annToMask(ann).astype(bool)
        if instance.shape != (height, width):
            raise ValueError(f"annotation {ann.get('id')} of image {ann['image_id']} decodes to {instance.shape}, "
                             f'not the image size {(height, width)}')
        mask[instance] = np.maximum(mask[instance], label)
        count += instance
    mask[count > 1] = ignore_index
    return mask


@DATASETS.register_module()
class CocoVOCSegmentation(SegmentationDataset):
    """COCO ``ann_file`` (instances json) + ``img_dir`` as 21-class VOC segmentation."""

    CLASSES = VOC_SEG_CLASSES

    def __init__(self, ann_file: str, img_dir: str, pipeline: Optional[Sequence[Union[dict, Callable]]] = None,
                 remove_images_without_annotations: Optional[bool] = None, min_area: float = 1000.0,
                 ignore_index: int = 255, test_mode: bool = False) -> None:
        super().__init__(pipeline, ignore_index, test_mode)
        from pycocotools.coco import COCO
        if not os.path.isfile(ann_file):
            raise FileNotFoundError(f'COCO annotation file {ann_file} does not exist')
        self.coco = COCO(ann_file)
        self.img_dir = img_dir
        if remove_images_without_annotations is None:
            remove_images_without_annotations = not test_mode
        kept = set(c for c in COCO_TO_VOC if c)
        for img_id in sorted(self.coco.getImgIds()):
            anns = [a for a in self.coco.loadAnns(self.coco.getAnnIds(imgIds=img_id)) if a['category_id'] in kept]
            if remove_images_without_annotations and sum(a.get('area', 0.0) for a in anns) <= min_area:
                continue
            info = self.coco.loadImgs(img_id)[0]
            self.records.append((str(img_id), os.path.join(img_dir, info['file_name']), img_id))
        if not self.records:
            raise ValueError(f'{ann_file}: no images with VOC-class annotations')

    def load_mask(self, mask_ref, image_shape) -> Tuple[np.ndarray, str]:
        info = self.coco.loadImgs(mask_ref)[0]
        if (info['height'], info['width']) != tuple(image_shape[:2]):
            raise ValueError(f"{info['file_name']}: the json says {info['height']}x{info['width']}, the image is "
                             f'{image_shape[0]}x{image_shape[1]}')
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=mask_ref))
        source = f"annotations of {info['file_name']} (image id {mask_ref})"
        return coco_anns_to_voc_mask(self.coco, anns, info['height'], info['width'], self.ignore_index), source
