"""Training checkpoints that survive a kill: atomic files in a folder keyed by the run.

The folder's name hashes everything that determines the run's result (the
training data, the codebook, the pretraining parameters except where and how it
runs), so changed parameters never resume from a stale checkpoint. Each file is
written to a temporary name and renamed (``selfsup.atomic``): a kill leaves the
previous checkpoint intact. Only the newest ``KEEP`` files stay.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from selfsup.atomic import atomic_path
from selfsup.config import PretrainingParams
from selfsup.data.store import content_hash

logger = logging.getLogger(__name__)

TRAINING_STATE_FORMAT = "selfsup.training-state/1"
KEEP = 2
# Knobs that change where and how fast a run trains, not what it computes.
NOT_IN_RUN_KEY = {"checkpoint", "distributed", "device", "compile"}
_FILE = re.compile(r"step-(\d{9})\.pt")


def run_key(data_key: str, params: PretrainingParams, codebook: np.ndarray) -> str:
    settings = params.model_dump(mode="json", exclude=NOT_IN_RUN_KEY)
    return content_hash(
        np.ascontiguousarray(codebook), data_key, json.dumps(settings, sort_keys=True), TRAINING_STATE_FORMAT
    )[:16]


class CheckpointFolder:
    """``step-000000123.pt`` files of one run, newest last."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if _FILE.fullmatch(p.name))

    def save(self, state: dict, step: int) -> Path:
        path = self.directory / f"step-{step:09d}.pt"
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        for old in self.files()[:-KEEP]:
            old.unlink(missing_ok=True)
        return path

    def latest(self) -> tuple[dict, Path] | None:
        """The newest checkpoint that loads, or None; unreadable ones are skipped with a warning."""
        for path in reversed(self.files()):
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # a damaged file must not stop the resume from an older one
                logger.warning("Skipping unreadable checkpoint %s: %s", path, exc)
                continue
            if state.get("format") == TRAINING_STATE_FORMAT:
                return state, path
            logger.warning("Skipping %s: format %r, expected %r", path, state.get("format"), TRAINING_STATE_FORMAT)
        return None

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def rng_state() -> dict:
    """This process's global random states (torch, NumPy, CUDA) as plain tensors and numbers."""
    _, keys, position, has_gauss, cached_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached_gauss)],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    keys, position, has_gauss, cached_gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, cached_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
