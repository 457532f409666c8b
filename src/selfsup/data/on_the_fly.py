"""On-the-fly views: fresh augmented views for every batch, generated from the image store.

The alternative to the view cache (``augmentation.mode: on_the_fly``). Nothing is
stored: each training batch gathers its uint8 images from the (memory-mapped)
store, moves them to the training device and runs the batched augmentations of
``selfsup.augment`` there. Every view is new, so ``views_per_image`` does not
bound what the model sees.

The views of a batch are a pure function of ``(augmentation.seed, epoch, step,
rank)`` and the images in it: a seed gives the same views, and a resumed run
regenerates exactly the views the interrupted one would have used. The next
batch is read and (on CUDA, on a side stream) augmented while the current one trains.

On disk (the ``view_cache`` catalog entry) on-the-fly mode leaves only a small
plan, ``on_the_fly.json`` and ``on_the_fly_positions.npy``: which images train and
with which parameters; ``OnTheFlyPlan.bind(images)`` turns it into ``OnTheFlyViews``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from selfsup import distributed
from selfsup.atomic import atomic_path, atomic_write_text
from selfsup.augment import augment_batch, to_uint8
from selfsup.config import AugmentationParams
from selfsup.data.cache_key import cache_key
from selfsup.data.store import channel_stats
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

PLAN_FILE = "on_the_fly.json"
POSITIONS_FILE = "on_the_fly_positions.npy"
# Images whose views give the encoder's input statistics.
STATS_SAMPLE_IMAGES = 4096


@dataclass(frozen=True, eq=False)
class OnTheFlyViews:
    """``TrainingViews`` of ``images[positions]``, generated per batch with ``params``.

    ``images`` is the uint8 (N, C, H, W) store (usually a memory map); ``key``
    names the data in checkpoint keys (``None``: hashed on first use).
    """

    images: np.ndarray
    positions: np.ndarray
    params: AugmentationParams
    key: str | None = None
    kind: ClassVar[str] = "on_the_fly"

    def __len__(self) -> int:
        return len(self.positions)

    def __reduce__(self):
        return OnTheFlyViews, (by_file(self.images), self.positions, self.params, self.key)

    @property
    def views_per_image(self) -> None:
        """None: every view is new."""
        return None

    @property
    def view_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of a view."""
        c, h, w = self.images.shape[1:]
        h, w = self.params.output_size or (h, w)
        return int(c), int(h), int(w)

    @functools.cached_property
    def data_key(self) -> str:
        if self.key is not None:
            return self.key
        return cache_key(self.images, self.positions, self.params) + "-on-the-fly"

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Of two views each of a sample of the training images."""
        return channel_stats(self.sample(STATS_SAMPLE_IMAGES, 2))

    def views_for_patches(self, patches: int, patch_size: int, seed: int) -> np.ndarray:
        """One view each of as many training images (picked by ``seed``) as ``patches`` patches take."""
        _, height, width = self.view_shape
        per_view = max(1, (height // patch_size) * (width // patch_size))
        return self.sample(math.ceil(patches / per_view), 1, seed=seed)

    @functools.cached_property
    def source(self) -> TrainingImages:
        return TrainingImages(self.images, self.positions, self.params)

    def gather(self, rows: np.ndarray) -> torch.Tensor:
        """uint8 (B, C, H, W) of training images ``rows`` (indices into ``positions``), on the CPU."""
        return self.source.gather(rows)

    def generate(self, images: torch.Tensor, n_views: int, generator: torch.Generator) -> torch.Tensor:
        """float (B, n_views, C, h, w) in [0, 1]: ``n_views`` independent views of each uint8 image,
        on the images' device (``generator`` must live there too). One batched call for all views."""
        b = images.shape[0]
        views = augment_batch(images.repeat_interleave(n_views, dim=0), self.params, generator, self.params.output_size)
        return views.view(b, n_views, *views.shape[1:])

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
        """The epoch order comes from ``generator`` (as in cache mode); each batch's uint8
        images are read from the store on a background thread, moved to ``device`` and
        augmented there with a generator seeded by ``(augmentation.seed, epoch, step,
        rank)``, so a resumed epoch (``skip``) regenerates the same views; local crops
        are drawn from the same generator after the global views. On CUDA the next
        batch is augmented on a side stream while the current one trains.
        """
        first, share = distributed.batch_share(batch_size)
        rank = distributed.rank()
        order = torch.randperm(len(self), generator=generator).numpy()
        cuda = device.type == "cuda"
        side = torch.cuda.Stream(device) if cuda else None

        def make(step: int) -> tuple[Batch, torch.cuda.Event | None]:
            start = step * batch_size + first
            images = self.gather(order[start : start + share])
            if cuda:
                images = images.pin_memory()
            with torch.cuda.stream(side) if cuda else nullcontext():
                images = images.to(device, non_blocking=True)
                views_rng = torch.Generator(device).manual_seed(batch_seed(self.params.seed, epoch, step, rank))
                batch = in_memory_format(self.generate(images, n_views, views_rng), memory_format)
                if local_crops is not None:
                    local = self.source.local_views(images, local_crops, views_rng)
                    batch = MultiCropBatch(batch, in_memory_format(local, memory_format))
                ready = side.record_event() if cuda else None
            return batch, ready

        for batch, ready in prefetched(make, iter(range(skip, len(self) // batch_size))):
            if ready is not None:
                current = torch.cuda.current_stream(device)
                current.wait_event(ready)
                for views in batch if isinstance(batch, MultiCropBatch) else (batch,):
                    views.record_stream(current)
            yield batch

    def sample(self, n_images: int, n_views: int, seed: int | None = None) -> np.ndarray:
        """uint8 (n, n_views, C, h, w) views of ``n_images`` training images picked at random by
        ``seed`` (``params.seed`` when None), in their stored order: for input statistics,
        tokenizers and previews. ``n_images`` is capped at the training set's size."""
        seed = self.params.seed if seed is None else seed
        n = min(n_images, len(self))
        rows = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return self._views(rows, n_views, seed)

    def preview(self, n_images: int, n_views: int) -> np.ndarray:
        """uint8 (n, n_views, C, h, w): views of the first ``n_images`` training images."""
        return self._views(np.arange(min(n_images, len(self))), n_views, self.params.seed)

    def _views(self, rows: np.ndarray, n_views: int, seed: int) -> np.ndarray:
        """uint8 views of training images ``rows``, generated 1,024 images at a time."""
        generator = torch.Generator().manual_seed(seed)
        chunks = []
        for start in range(0, len(rows), 1024):
            chunk = self.gather(rows[start : start + 1024])
            chunks.append(to_uint8(self.generate(chunk, n_views, generator)).numpy())
        c, h, w = self.view_shape
        return np.concatenate(chunks) if chunks else np.zeros((0, n_views, c, h, w), dtype=np.uint8)


@dataclass(frozen=True)
class OnTheFlyPlan:
    """What the ``view_cache`` entry holds in on-the-fly mode: the training rows, the parameters, the key."""

    positions: np.ndarray
    params: AugmentationParams
    key: str

    def bind(self, images: np.ndarray) -> OnTheFlyViews:
        return OnTheFlyViews(images, self.positions, self.params, key=self.key)


def save_plan(directory: str | Path, plan: OnTheFlyPlan) -> None:
    """Write the plan atomically; ``on_the_fly.json`` last, so a half-written plan is never read."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PLAN_FILE).unlink(missing_ok=True)
    with atomic_path(directory / POSITIONS_FILE) as tmp, open(tmp, "wb") as file:
        np.save(file, np.asarray(plan.positions, dtype=np.int64), allow_pickle=False)
    meta = {
        "mode": "on_the_fly",
        "key": plan.key,
        "n_images": len(plan.positions),
        "params": plan.params.model_dump(mode="json"),
    }
    atomic_write_text(directory / PLAN_FILE, json.dumps(meta, indent=2))


def open_plan(directory: str | Path) -> OnTheFlyPlan | None:
    """The on-the-fly plan in ``directory``, or None when the folder holds none (a view cache, or nothing)."""
    directory = Path(directory)
    if not (directory / PLAN_FILE).exists():
        return None
    meta = json.loads((directory / PLAN_FILE).read_text(encoding="utf-8"))
    positions = np.load(directory / POSITIONS_FILE, allow_pickle=False)
    return OnTheFlyPlan(positions, AugmentationParams.model_validate(meta["params"]), meta["key"])


def remove_plan(directory: str | Path) -> None:
    directory = Path(directory)
    (directory / PLAN_FILE).unlink(missing_ok=True)
    (directory / POSITIONS_FILE).unlink(missing_ok=True)
