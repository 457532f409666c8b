"""What pretraining trains on: the ``TrainingViews`` protocol, and what its two sources share.

A source of training views is the view cache (``selfsup.data.cached_views``) or
views generated per batch from the image store (``selfsup.data.on_the_fly``).
The trainer sees only this protocol. Sources are pickled to the worker processes
of a distributed run; an array that maps a whole file travels as the file's name
and is mapped again there (``by_file``), so workers share the page cache instead
of each receiving a copy.

Multi-crop (Caron et al., 2020): a method that asks for ``LocalCrops`` gets each
batch as a ``MultiCropBatch``, its global views and its local views as two
tensors of their own sizes. Both sources cut the local views the same way, per
batch, from the uint8 images the views come from (``TrainingImages``); without
local crops a batch is the plain tensor it always was.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol, TypeVar

import numpy as np
import torch

from selfsup.augment import augment_batch
from selfsup.config import AugmentationParams

Item = TypeVar("Item")
Loaded = TypeVar("Loaded")


@dataclass(frozen=True)
class LocalCrops:
    """What a multi-crop method asks for besides its global views: ``count`` local views of each image,
    (h, w) ``size``, each cut from a random ``scale`` fraction of the image's area."""

    count: int
    size: tuple[int, int]
    scale: tuple[float, float]


class MultiCropBatch(NamedTuple):
    """One step's views with local crops: float in [0, 1], each view in the training memory format."""

    global_views: torch.Tensor  # (B, V, C, H, W)
    local_views: torch.Tensor  # (B, L, C, h, w)


Batch = torch.Tensor | MultiCropBatch  # a plain (B, V, C, H, W) tensor when no local crops were asked for


def global_views(batch: Batch) -> torch.Tensor:
    """float (B, V, C, H, W): the global views of ``batch``."""
    return batch.global_views if isinstance(batch, MultiCropBatch) else batch


def every_view(batch: Batch) -> tuple[torch.Tensor, ...]:
    """Each view of ``batch`` as a (B, C, h, w) tensor: the global views, then the local views."""
    local = batch.local_views.unbind(1) if isinstance(batch, MultiCropBatch) else ()
    return (*global_views(batch).unbind(1), *local)


class TrainingViews(Protocol):
    """A source of float (B, V, C, H, W) training batches, reproducible from a batch-order generator."""

    kind: ClassVar[str]  # the training summary's ``views``: "cache" or "on_the_fly"

    def __len__(self) -> int:
        """The number of training images."""

    @property
    def views_per_image(self) -> int | None:
        """How many distinct views an image has; None: unbounded (a new view every time)."""

    @property
    def view_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of a view."""

    @property
    def data_key(self) -> str:
        """Names the training data in checkpoint keys (hashed on first use when not given)."""

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std in [0, 1] units of the views: the encoder's input statistics."""

    def views_for_patches(self, patches: int, patch_size: int, seed: int) -> np.ndarray:
        """uint8 (n, k, C, h, w) views to draw ``patches`` patches of ``patch_size`` pixels from (a tokenizer)."""

    def preview(self, n_images: int, n_views: int) -> np.ndarray:
        """uint8 (n, n_views, C, h, w): views of the first ``n_images`` training images, for the report."""

    def epoch_batches(
        self,
        n_views: int,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
        memory_format: torch.memory_format,
        epoch: int,
        skip: int = 0,
        local_crops: LocalCrops | None = None,
    ) -> Iterator[Batch]:
        """One epoch of this rank's share of each global batch, float in [0, 1] on ``device``.

        The epoch's image order is drawn from ``generator``; ``skip`` drops the
        epoch's first batches (a resumed epoch) and yields exactly the rest. With
        ``local_crops`` each batch is a ``MultiCropBatch``; its local views depend
        only on the images, ``augmentation.seed``, the epoch, the step and the rank.
        """


@dataclass(frozen=True, eq=False)
class TrainingImages:
    """The uint8 training images, ``images[positions]`` of the (N, C, H, W) store, and the augmentation
    their views are made with: what local crops are cut from."""

    images: np.ndarray
    positions: np.ndarray
    params: AugmentationParams

    def __reduce__(self):  # the parameters as JSON: a third of their pickle's size
        return _training_images, (by_file(self.images), self.positions, self.params.model_dump_json())

    def gather(self, rows: np.ndarray) -> torch.Tensor:
        """uint8 (B, C, H, W) of training images ``rows`` (indices into ``positions``), on the CPU.

        Reads the memory map in ascending order (one pass over the file), then restores ``rows``' order.
        """
        wanted = self.positions[rows]
        order = np.argsort(wanted, kind="stable")
        data = np.empty((len(wanted), *self.images.shape[1:]), dtype=np.uint8)
        data[order] = self.images[wanted[order]]
        return torch.from_numpy(data)

    def local_views(self, images: torch.Tensor, crops: LocalCrops, generator: torch.Generator) -> torch.Tensor:
        """float (B, count, C, h, w) in [0, 1] on the images' device (``generator`` must live there too):
        the augmentation's operations with the local crops' scale and size, one batched call."""
        local = self.params.model_copy(update={"crop_scale": crops.scale})
        views = augment_batch(images.repeat_interleave(crops.count, dim=0), local, generator, crops.size)
        return views.view(len(images), crops.count, *views.shape[1:])


def _training_images(images: np.ndarray, positions: np.ndarray, params: str) -> TrainingImages:
    return TrainingImages(images, positions, AugmentationParams.model_validate_json(params))


def batch_seed(seed: int, epoch: int, step: int, rank: int = 0) -> int:
    """The augmentation seed of one rank's batch: independent streams per (epoch, step, rank)."""
    return int(np.random.SeedSequence([seed, epoch, step, rank]).generate_state(1, np.uint64)[0] >> 1)


def in_memory_format(views: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """(B, V, C, H, W) ``views`` with every view laid out in ``memory_format``."""
    b, v = views.shape[:2]
    flat = views.flatten(0, 1).contiguous(memory_format=memory_format)
    return flat.view(b, v, *flat.shape[1:])


def prefetched(load: Callable[[Item], Loaded], items: Iterator[Item]) -> Iterator[Loaded]:
    """``load(item)`` for each item, the next one prepared on a background thread while the caller uses the current."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for item in items:
            upcoming = pool.submit(load, item)
            if pending is not None:
                yield pending.result()
            pending = upcoming
        if pending is not None:
            yield pending.result()


def by_file(array: np.ndarray) -> np.ndarray | _MappedFile:
    """``array`` to pickle: when it maps a whole file, a stand-in that unpickles as that file mapped again."""
    if isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap):
        return _MappedFile(array)
    return array


class _MappedFile:
    def __init__(self, array: np.memmap):
        self.array = array

    def __reduce__(self):
        array = self.array
        return _open_mapped, (array.filename, array.dtype.str, array.shape, array.offset)


def _open_mapped(filename: str, dtype: str, shape: tuple[int, ...], offset: int) -> np.memmap:
    return np.memmap(filename, dtype=np.dtype(dtype), mode="r", shape=shape, offset=offset)
