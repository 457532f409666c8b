"""What pretraining trains on: the ``TrainingViews`` protocol, and what its two sources share.

A source of training views is the view cache (``selfsup.data.cached_views``) or
views generated per batch from the image store (``selfsup.data.on_the_fly``).
The trainer sees only this protocol. Sources are pickled to the worker processes
of a distributed run; an array that maps a whole file travels as the file's name
and is mapped again there (``by_file``), so workers share the page cache instead
of each receiving a copy.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, Protocol, TypeVar

import numpy as np
import torch

Item = TypeVar("Item")
Loaded = TypeVar("Loaded")


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
    ) -> Iterator[torch.Tensor]:
        """One epoch of this rank's share of each global batch, float in [0, 1] on ``device``.

        The epoch's image order is drawn from ``generator``; ``skip`` drops the
        epoch's first batches (a resumed epoch) and yields exactly the rest.
        """


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
