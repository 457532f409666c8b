"""``NpyDataset``: a NumPy array in a ``.npy`` file, memory-mapped on load."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

from selfsup.atomic import atomic_path
from selfsup.data.store import is_scratch, persist_store
from selfsup.resources import check_free_space


class NpyDataset(AbstractVersionedDataset[np.ndarray, np.ndarray]):
    """Loads read-only memory maps (``mmap_mode="r"`` by default); saves atomically.

    Example catalog entry::

        images:
          type: selfsup.datasets.NpyDataset
          filepath: data/01_raw/images.npy
    """

    def __init__(
        self,
        *,
        filepath: str,
        mmap_mode: str | None = "r",
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath=PurePosixPath(filepath), version=version)
        self._mmap_mode = mmap_mode
        self.metadata = metadata

    def load(self) -> np.ndarray:
        path = Path(self._get_load_path())
        try:
            return np.load(path, mmap_mode=self._mmap_mode, allow_pickle=False)
        except FileNotFoundError:
            raise DatasetError(f"{path} does not exist; run the pipeline that writes it first") from None

    def save(self, data: np.ndarray) -> None:
        path = Path(self._get_save_path())
        if is_scratch(data):  # a store decoded into a memory-mapped scratch file: move it, do not copy it
            persist_store(data, path)
            self._clear_version_cache()
            return
        data = np.asarray(data)
        check_free_space(
            path.parent, data.nbytes, f"{path} ({data.shape} {data.dtype})", "the image size or the dataset"
        )
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, data, allow_pickle=False)
        self._clear_version_cache()

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).exists()
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "mmap_mode": self._mmap_mode, "version": self._version}
