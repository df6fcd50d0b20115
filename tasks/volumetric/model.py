"""Brain-tumour segmentation of multi-modal MRI volumes with a (reversible) 3D U-Net (Pendse et al.).

``tensor`` mode: ``B x 4 x D x H x W`` z-scored volumes -> ``B x 3 x D x H x W`` region logits (WT, TC, ET).
``loss`` mode: soft Dice + BCE per region on the training patches. ``predict`` mode: sliding-window inference over
the whole volume (Gaussian-weighted overlapping patches, progress bar), regions thresholded and decoded to the
BraTS label map ``{'seg': D x H x W uint8 in {0, 1, 2, 4}}`` plus the geometry needed to write it as NIfTI.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from backbones import BACKBONES
from heads import HEADS
from ..base import ModuleOrCfg, SampleListPreprocessor, TaskModel, build_part
from ..registry import TASKS
from .losses import REGION_ORDER, region_losses, regions_to_labels
from .sliding_window import sliding_window_inference


def _geometry(sample: dict) -> Tuple[np.ndarray, Tuple[float, ...]]:
    """The affine and (D, H, W) spacing of a sample: from its meta, the image's attributes or the file header."""
    meta, img = sample.get('meta', {}), sample['img']
    affine, spacing = meta.get('affine'), meta.get('spacing')
    if affine is None:
        affine = getattr(img, 'affine', None)
        spacing = spacing if spacing is not None else getattr(img, 'spacing', None)
    if affine is None and meta.get('file'):
        from data.datasets.brats import find_case_files, read_nifti
        path = meta['file']
        if os.path.isdir(path):
            path = find_case_files(path)['flair']
        if os.path.isfile(path):
            import nibabel as nib
            affine = np.asarray(nib.load(path).affine, np.float64)
    if affine is None:
        affine = np.eye(4)
    affine = np.asarray(affine, np.float64)
    if spacing is None:
        spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0))[::-1])
    return affine, tuple(float(s) for s in spacing)


@TASKS.register_module()
class VolumetricPreprocessor(SampleListPreprocessor):
    """Stack ``C x D x H x W`` float volumes into ``B x C x D x H x W`` (zero-padding to the largest in the batch)
    and the ``gt_seg`` label maps into ``gt_seg_tensor``; fills ``meta`` (``ori_shape`` = D, H, W, ``affine``,
    ``spacing``) for volumes that come from ``read_input`` through ``tools/infer.py``."""

    def __init__(self, in_channels: int = 4) -> None:
        super().__init__()
        self.in_channels = in_channels

    def process(self, samples: List[dict], training: bool) -> dict:
        volumes = []
        for s in samples:
            img = np.asarray(s['img'], dtype=np.float32)
            name = s.get('meta', {}).get('img_id')
            if img.ndim != 4 or img.shape[0] != self.in_channels:
                raise ValueError(f'{name}: expected a {self.in_channels} x D x H x W volume, got shape {img.shape}')
            volumes.append(img)
        size = tuple(max(v.shape[i] for v in volumes) for i in range(1, 4))
        batch = np.zeros((len(volumes), self.in_channels) + size, np.float32)
        out_samples = []
        for i, (s, v) in enumerate(zip(samples, volumes)):
            batch[i, :, :v.shape[1], :v.shape[2], :v.shape[3]] = v
            affine, spacing = _geometry(s)
            meta = dict(s.get('meta', {}), ori_shape=tuple(v.shape[1:]), affine=affine, spacing=spacing)
            sample = dict(s, meta=meta)
            if s.get('gt_seg') is not None:
                seg = np.zeros(size, np.int64)
                gt = np.asarray(s['gt_seg'])
                if gt.shape != v.shape[1:]:
                    raise ValueError(f"{meta.get('img_id')}: label map {gt.shape} and volume {v.shape[1:]} differ")
                seg[:gt.shape[0], :gt.shape[1], :gt.shape[2]] = gt
                sample['gt_seg_tensor'] = torch.from_numpy(seg).to(self.device)
            out_samples.append(sample)
        return dict(inputs=torch.from_numpy(batch).to(self.device), data_samples=out_samples)


@TASKS.register_module()
class VolumetricSegmentor(TaskModel):
    """Backbone (3D encoder, e.g. ``ReversibleUNet3dEncoder``) + head (``UNet3dHead``) predicting WT, TC, ET.

    Args:
        patch_size: sliding-window patch (each side divisible by the encoder's deepest stride).
        overlap / gaussian / sigma_scale / sw_batch_size / progress: sliding-window options.
        threshold: probability above which a voxel belongs to a region.
        dice_weight / bce_weight: loss weights.
    """

    def __init__(self, backbone: ModuleOrCfg, head: ModuleOrCfg, in_channels: int = 4,
                 patch_size: Sequence[int] = (128, 128, 128), overlap: float = 0.5, gaussian: bool = True,
                 sigma_scale: float = 0.125, sw_batch_size: int = 1, progress: bool = True, threshold: float = 0.5,
                 dice_weight: float = 1.0, bce_weight: float = 1.0, data_preprocessor: ModuleOrCfg = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='VolumetricPreprocessor', in_channels=in_channels)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_part(backbone, BACKBONES, in_channels=in_channels)
        self.head = build_part(head, HEADS, in_channels=self.backbone.out_channels, num_classes=len(REGION_ORDER))
        if self.head.out_channels[0] != len(REGION_ORDER):
            raise ValueError(f'the head must output {len(REGION_ORDER)} region maps (WT, TC, ET), '
                             f'got {self.head.out_channels[0]}')
        self.patch_size = tuple(int(p) for p in (patch_size if not isinstance(patch_size, int) else (patch_size,) * 3))
        divisor = max(getattr(self.backbone, 'strides', [1]))
        if len(self.patch_size) != 3 or any(p % divisor for p in self.patch_size):
            raise ValueError(f'patch_size {self.patch_size} must be three sizes divisible by {divisor} (the deepest '
                             f'encoder stride)')
        self.divisor = divisor
        self.in_channels, self.overlap, self.gaussian, self.sigma_scale = in_channels, overlap, gaussian, sigma_scale
        self.sw_batch_size, self.progress, self.threshold = sw_batch_size, progress, threshold
        self.dice_weight, self.bce_weight = dice_weight, bce_weight

    # --- the three modes ------------------------------------------------------------------------------------
    def _forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(inputs))

    def loss(self, inputs: torch.Tensor, data_samples: List[dict]) -> Dict[str, torch.Tensor]:
        if any(s.get('gt_seg_tensor') is None for s in data_samples):
            raise ValueError('loss mode needs gt_seg in every sample')
        if any(n % self.divisor for n in inputs.shape[2:]):
            raise ValueError(f'training patches {tuple(inputs.shape[2:])} must be divisible by {self.divisor}')
        labels = torch.stack([s['gt_seg_tensor'] for s in data_samples])
        return region_losses(self._forward(inputs), labels, self.dice_weight, self.bce_weight)

    @torch.no_grad()
    def predict_probabilities(self, inputs: torch.Tensor, desc: str = 'sliding window') -> torch.Tensor:
        """Region probabilities (``B x 3 x D x H x W``) by Gaussian-weighted sliding-window inference."""
        return sliding_window_inference(inputs, lambda x: torch.sigmoid(self._forward(x)), self.patch_size,
                                        self.overlap, self.gaussian, self.sigma_scale, self.sw_batch_size,
                                        self.progress, desc)

    def predict(self, inputs: torch.Tensor, data_samples: List[dict]) -> List[dict]:
        names = [str(s.get('meta', {}).get('img_id', '')) for s in data_samples]
        probs = self.predict_probabilities(inputs, desc=names[0] if len(names) == 1 else 'sliding window')
        labels = regions_to_labels(probs > self.threshold).cpu().numpy()
        results = []
        for label, sample, name in zip(labels, data_samples, names):
            meta = sample.get('meta', {})
            d, h, w = meta.get('ori_shape', label.shape)
            affine, spacing = _geometry(sample)
            results.append(dict(seg=np.ascontiguousarray(label[:d, :h, :w]), img_id=name, affine=affine,
                                spacing=spacing))
        return results

    # --- tools/infer.py ------------------------------------------------------------------------------------
    input_suffixes = ('.nii', '.nii.gz')
    supports_video = False

    def read_input(self, path: str) -> np.ndarray:
        """A BraTS case folder, or a NIfTI file (4D with the four modalities, or one modality of a case folder),
        z-scored like the training data: a ``4 x D x H x W`` ``VolumeArray`` carrying affine and spacing."""
        from data.datasets.brats import NIFTI_SUFFIXES, load_case, load_volume_file
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f'input {path} does not exist')
        if not os.path.isdir(path) and not path.lower().endswith(tuple(NIFTI_SUFFIXES)):
            raise ValueError(f'{path}: a volumetric model reads NIfTI files ({", ".join(NIFTI_SUFFIXES)}) or BraTS '
                             f'case folders, not {os.path.splitext(path)[1] or "this file"}')
        sample = load_case(path, with_seg=False) if os.path.isdir(path) else load_volume_file(path)
        return sample['img']

    def collect_inputs(self, path: str) -> Optional[List[str]]:
        """A case folder -> itself; a folder of case folders -> those; else the default discovery (NIfTI files)."""
        from data.datasets.brats import is_case_dir
        if not os.path.isdir(path):
            return None
        if is_case_dir(path):
            return [path]
        cases = [str(p) for p in sorted(Path(path).iterdir()) if p.is_dir() and is_case_dir(p)]
        return cases or None

    def visualize(self, image: np.ndarray, result: dict) -> np.ndarray:
        """Axial slices of the FLAIR (last modality) with NCR/ED/ET overlaid (RGB uint8)."""
        from data.visualization.volumes import draw_axial_slices
        volume = np.asarray(image)
        return draw_axial_slices(volume, result['seg'], title=str(result.get('img_id', '')))

    def save_result(self, result: dict, stem: str) -> List[str]:
        """``stem.nii.gz``: the label map in the input's voxel order with the input's affine."""
        from data.datasets.brats import write_nifti
        from data.io import check_writable
        affine = result.get('affine')
        return [write_nifti(check_writable(stem + '.nii.gz'), result['seg'], np.eye(4) if affine is None else affine,
                            np.uint8)]

    def set_reversible(self, reversible: bool) -> 'VolumetricSegmentor':
        """Switch all reversible stages on or off (same weights; for checks and memory comparisons)."""
        from backbones.reversible import set_reversible
        set_reversible(self, reversible)
        return self


__all__: Union[List[str], Tuple[str, ...]] = ['VolumetricSegmentor', 'VolumetricPreprocessor']
