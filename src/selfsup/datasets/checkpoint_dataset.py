"""``EncoderCheckpointDataset``: an encoder checkpoint dict saved with ``torch.save``."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import torch
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

from selfsup.atomic import atomic_path


class EncoderCheckpointDataset(AbstractVersionedDataset[dict, dict]):
    """Saves ``{"format", "config", "state_dict", "training"}``; loads it with ``weights_only``."""

    def __init__(self, *, filepath: str, version: Version | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(filepath=PurePosixPath(filepath), version=version)
        self.metadata = metadata

    def load(self) -> dict:
        path = Path(self._get_load_path())
        if not path.exists():
            raise DatasetError(f"{path} does not exist; run the pretraining pipeline first")
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, data: dict) -> None:
        with atomic_path(Path(self._get_save_path())) as tmp:
            torch.save(data, tmp)
        self._clear_version_cache()

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).exists()
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "version": self._version}
