"""``CloseMosaicHook``: switch the mosaic off for the last epochs of a YOLO-style training (YOLOv8's recipe).

From epoch ``max_epochs - num_last_epochs`` on, every transform of the training dataset's pipeline whose class name is
in ``types`` (``Mosaic`` by default; add ``RandomAffine`` to stop the affine too) gets ``enabled = False``; a
switched-off ``Mosaic`` asks the dataset for no extra samples and only resizes the image.

DataLoader workers hold their own copies of the dataset. Without persistent workers they are made anew from the
main process's dataset at every epoch, so the switch reaches them. With ``persistent_workers=True`` they live across
epochs: the hook then drops the loader's cached iterator, so the next ``iter(loader)`` (at the start of this very
epoch, right after ``before_train_epoch``) shuts the old workers down and starts new ones from the switched dataset.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

from mmengine.hooks import Hook

from ...registry import HOOKS


def iter_datasets(dataset: Any) -> Iterator[Any]:
    """The dataset and, through mmengine / torch wrappers (``datasets``, ``dataset``), every dataset inside."""
    yield dataset
    for inner in getattr(dataset, 'datasets', None) or []:
        yield from iter_datasets(inner)
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and inner is not dataset:
        yield from iter_datasets(inner)


def iter_transforms(dataset: Any) -> Iterator[Any]:
    """The transforms of every pipeline in ``dataset`` (an mmengine ``Compose`` or a plain list)."""
    for ds in iter_datasets(dataset):
        pipeline = getattr(ds, 'pipeline', None)
        yield from getattr(pipeline, 'transforms', pipeline if isinstance(pipeline, (list, tuple)) else [])


def switch_off(dataset: Any, types: Sequence[str]) -> int:
    """Set ``enabled = False`` on the pipeline transforms whose class name is in ``types``; return how many."""
    count = 0
    for transform in iter_transforms(dataset):
        if type(transform).__name__ in types and hasattr(transform, 'enabled'):
            transform.enabled = False
            count += 1
    return count


@HOOKS.register_module()
class CloseMosaicHook(Hook):
    """Switch the mosaic (and the other ``types``) off for the last ``num_last_epochs`` epochs."""

    priority = 'NORMAL'

    def __init__(self, num_last_epochs: int = 10, types: Sequence[str] = ('Mosaic',)) -> None:
        if num_last_epochs < 0:
            raise ValueError(f'num_last_epochs must be >= 0, got {num_last_epochs}')
        self.num_last_epochs = int(num_last_epochs)
        self.types = tuple(types)
        self.switched = False

    def before_train_epoch(self, runner) -> None:
        if self.switched or runner.epoch < runner.max_epochs - self.num_last_epochs:
            return
        loader = runner.train_loop.dataloader
        count = switch_off(loader.dataset, self.types)
        if count == 0:
            raise ValueError(f'CloseMosaicHook: the training pipeline has no {" / ".join(self.types)} transform '
                             'to switch off')
        if getattr(loader, 'persistent_workers', False) and getattr(loader, '_iterator', None) is not None:
            loader._iterator = None  # new workers, made from the switched dataset, at the next iter(loader)
        self.switched = True
        runner.logger.info(f'CloseMosaicHook: {" / ".join(self.types)} switched off from epoch {runner.epoch + 1} '
                           f'({count} transform(s))')
