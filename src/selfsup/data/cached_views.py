"""Training views from the view cache: each image gives ``n_views`` of its K cached views per epoch.

The views an image contributes are drawn anew each epoch, distinct within the
image; each rank gathers only its share of every global batch, so it reads only
its shard of the (memory-mapped) cache, on a background thread while the
current batch trains.

Local crops (multi-crop) are not cached: they are cut per batch from the
training images the cache was made from, on the CPU on the same background
thread, with the generator of ``(augmentation.seed, epoch, step, rank)`` as in
on-the-fly mode. They are small, so cutting them costs far less than the global
views, and a fresh crop every epoch keeps the variety multi-crop is for; a
stored pool would tie the cache's key to the pretraining method's parameters.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from selfsup import distributed
from selfsup.data.store import channel_stats, content_hash
from selfsup.data.training_views import (
    Batch,
    LocalCrops,
    MultiCropBatch,
    TrainingImages,
    batch_seed,
    by_file,
    in_memory_format,
    prefetched,
)


@dataclass(frozen=True, eq=False)
class CachedViews:
    """``TrainingViews`` of cached uint8 (N, K, C, H, W) views; ``key`` names them (None: hashed on first use).

    ``source`` is the images the views were made from, needed only for local crops.
    """

    views: np.ndarray
    key: str | None = None
    source: TrainingImages | None = None
    kind: ClassVar[str] = "cache"

    def __len__(self) -> int:
        return int(self.views.shape[0])

    def __reduce__(self):
        return CachedViews, (by_file(self.views), self.key, self.source)

    @property
    def views_per_image(self) -> int:
        return int(self.views.shape[1])

    @property
    def view_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.views.shape[-3:]
        return int(channels), int(height), int(width)

    @functools.cached_property
    def data_key(self) -> str:
        return self.key if self.key is not None else content_hash(self.views)

    def channel_stats(self) -> tuple[list[float], list[float]]:
        return channel_stats(self.views)

    def views_for_patches(self, patches: int, patch_size: int, seed: int) -> np.ndarray:
        """Every cached view: the tokenizer samples its patches from all of them."""
        return self.views

    def preview(self, n_images: int, n_views: int) -> np.ndarray:
        return np.asarray(self.views[:n_images, :n_views])

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
        if local_crops is not None and self.source is None:
            raise ValueError("local crops are cut from the training images: these cached views were given none")
        flat_views = self.views.reshape(-1, *self.views.shape[2:])
        steps = itertools.islice(enumerate(self._epoch_rows(n_views, batch_size, generator)), skip, None)
        pin = device.type == "cuda"

        def load(step_rows: tuple[int, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor | None]:
            step, rows = step_rows
            views = _gather(flat_views, rows, pin)
            if local_crops is None:
                return views, None
            seed = batch_seed(self.source.params.seed, epoch, step, distributed.rank())
            images = self.source.gather(rows[:, 0] // self.views_per_image)
            local = self.source.local_views(images, local_crops, torch.Generator().manual_seed(seed))
            return views, local.pin_memory() if pin else local

        for batch, local in prefetched(load, steps):
            batch = batch.to(device, non_blocking=True)
            b, v = batch.shape[:2]
            images = batch.flatten(0, 1).float().div_(255.0).contiguous(memory_format=memory_format)
            images = images.view(b, v, *images.shape[1:])
            if local is None:
                yield images
            else:
                yield MultiCropBatch(images, in_memory_format(local.to(device, non_blocking=True), memory_format))

    def _epoch_rows(self, n_views: int, batch_size: int, generator: torch.Generator) -> Iterator[np.ndarray]:
        """Per step, this rank's flat rows of ``views.reshape(N*K, ...)`` to gather: (B / world, n_views).

        Every rank draws the same epoch order from the same generator and takes its
        slice of each global batch.
        """
        n, k = self.views.shape[:2]
        first, share = distributed.batch_share(batch_size)
        order = torch.randperm(n, generator=generator).numpy()
        choice = torch.rand(n, k, generator=generator).argsort(dim=1)[:, :n_views].numpy()
        for start in range(0, n - batch_size + 1, batch_size):
            images = order[start + first : start + first + share]
            yield images[:, None] * k + choice[images]


def _gather(flat_views: np.ndarray, rows: np.ndarray, pin: bool) -> torch.Tensor:
    batch = torch.from_numpy(flat_views[rows.reshape(-1)])
    batch = batch.view(*rows.shape, *batch.shape[1:])
    return batch.pin_memory() if pin else batch
