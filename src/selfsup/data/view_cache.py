"""The view cache: K pre-computed augmented views per image, keyed by content.

Layout of a cache folder: ``views.npy`` (uint8 N×K×C×H×W), ``positions.npy``
(the training rows of the image store the views are of, for local crops) and
``meta.json`` (key, shape, parameters). ``meta.json`` is written last and removed first, so a
build that was interrupted is never mistaken for a complete cache.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from selfsup.atomic import atomic_path, atomic_write_text
from selfsup.augment import iter_view_chunks
from selfsup.config import AugmentationParams
from selfsup.data.cache_key import cache_key
from selfsup.data.cached_views import CachedViews
from selfsup.data.on_the_fly import OnTheFlyPlan, OnTheFlyViews, open_plan, remove_plan, save_plan
from selfsup.data.training_views import TrainingImages
from selfsup.resources import check_free_space

logger = logging.getLogger(__name__)

VIEWS_FILE = "views.npy"
POSITIONS_FILE = "positions.npy"
META_FILE = "meta.json"


@dataclass(frozen=True)
class ViewCache:
    views: np.ndarray  # uint8 (N, K, C, H, W), usually memory-mapped
    key: str
    positions: np.ndarray  # the rows of the image store the views are of
    params: AugmentationParams

    @property
    def views_per_image(self) -> int:
        return self.views.shape[1]

    def bind(self, images: np.ndarray) -> CachedViews:
        """The views to train on, as ``OnTheFlyPlan.bind`` gives them; ``images`` (the store) only serves
        local crops."""
        return CachedViews(self.views, self.key, TrainingImages(images, self.positions, self.params))


def open_cache(directory: str | Path) -> ViewCache | None:
    """The complete cache in ``directory``, or None when absent or incomplete."""
    directory = Path(directory)
    meta_path, views_path, positions_path = directory / META_FILE, directory / VIEWS_FILE, directory / POSITIONS_FILE
    if not meta_path.exists() or not views_path.exists() or not positions_path.exists():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    views = np.load(views_path, mmap_mode="r")
    if list(views.shape) != meta["shape"]:
        logger.warning("View cache %s has shape %s, expected %s: ignoring it", views_path, views.shape, meta["shape"])
        return None
    positions = np.load(positions_path, allow_pickle=False)
    return ViewCache(views, meta["key"], positions, AugmentationParams.model_validate(meta["params"]))


def ensure_cache(
    directory: str | Path, images: np.ndarray, positions: np.ndarray, params: AugmentationParams
) -> ViewCache:
    """Views of ``images[positions]``: reuse the cache in ``directory`` when its key matches, else rebuild."""
    directory = Path(directory)
    key = cache_key(images, positions, params)
    existing = open_cache(directory)
    if existing is not None and existing.key == key:
        logger.info("View cache %s is up to date (key %s): reusing it", directory, key[:12])
        return existing
    reason = "no complete cache" if existing is None else f"key changed from {existing.key[:12]}"
    logger.info("Building view cache %s (key %s; %s)", directory, key[:12], reason)
    _build(directory, images, positions, params, key)
    return open_cache(directory)


def _build(directory: Path, images: np.ndarray, positions: np.ndarray, params: AugmentationParams, key: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META_FILE).unlink(missing_ok=True)
    _, c, h, w = images.shape
    h, w = params.output_size or (h, w)
    n = len(positions)
    shape = (n, params.views_per_image, c, h, w)
    for leftover in directory.glob(f".{VIEWS_FILE}.tmp-*"):  # from a build that was killed
        leftover.unlink()
    check_free_space(
        directory,
        int(np.prod(shape)),
        f"the view cache {directory / VIEWS_FILE} ({' × '.join(map(str, shape))} bytes)",
        "augmentation.views_per_image or augmentation.output_size",
    )
    with atomic_path(directory / VIEWS_FILE) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        with tqdm(total=n, desc="view cache", unit="img", disable=None) as bar:
            for rows, views in iter_view_chunks(images, positions, params):
                out[rows] = views
                bar.update(rows.stop - rows.start)
        out.flush()
        del out
    with atomic_path(directory / POSITIONS_FILE) as tmp, open(tmp, "wb") as file:
        np.save(file, np.asarray(positions, dtype=np.int64), allow_pickle=False)
    meta = {"key": key, "shape": list(shape), "params": params.model_dump(mode="json")}
    atomic_write_text(directory / META_FILE, json.dumps(meta, indent=2))


@dataclass(frozen=True)
class ViewCacheRequest:
    """What a view cache must hold; a storage layer turns it into a ``ViewCache``.

    Building is deferred to the layer that knows the cache's folder, so that a
    cache whose key already matches is reused without computing a single view.
    With ``params.mode == "on_the_fly"`` no view is computed: the folder gets a
    small plan (``selfsup.data.on_the_fly``) and an existing cache is kept, unused,
    for a later run in cache mode.
    """

    images: np.ndarray
    positions: np.ndarray
    params: AugmentationParams

    def realise(self, directory: str | Path) -> ViewCache | OnTheFlyPlan:
        if self.params.mode == "on_the_fly":
            logger.info("Views will be generated on the fly (augmentation.mode=on_the_fly): no view cache is built")
            views = OnTheFlyViews(self.images, np.asarray(self.positions, dtype=np.int64), self.params)
            plan = OnTheFlyPlan(views.positions, self.params, views.data_key)
            save_plan(directory, plan)
            return plan
        remove_plan(directory)
        return ensure_cache(directory, self.images, self.positions, self.params)


def open_views(directory: str | Path) -> ViewCache | OnTheFlyPlan | None:
    """What the last augmentation run left in ``directory``: an on-the-fly plan, a complete cache, or None."""
    return open_plan(directory) or open_cache(directory)
