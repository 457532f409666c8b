"""``ViewCacheDataset``: the content-keyed view cache in a folder, or the plan of on-the-fly views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from selfsup.data.on_the_fly import OnTheFlyPlan
from selfsup.data.view_cache import ViewCache, ViewCacheRequest, open_views


class ViewCacheDataset(AbstractDataset[ViewCacheRequest, ViewCache | OnTheFlyPlan]):
    """Saving a ``ViewCacheRequest`` reuses the cache when its key matches, else rebuilds it.

    In on-the-fly mode (``augmentation.mode``) saving writes only the plan, and
    loading returns it (an ``OnTheFlyPlan``) instead of a ``ViewCache``.
    """

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> ViewCache | OnTheFlyPlan:
        cache = open_views(self._path)
        if cache is None:
            raise DatasetError(f"no complete view cache in {self._path}; run the augmentation pipeline first")
        return cache

    def save(self, data: ViewCacheRequest) -> None:
        data.realise(self._path)

    def _exists(self) -> bool:
        return open_views(self._path) is not None

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
