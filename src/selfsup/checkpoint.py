"""Training checkpoints that survive a kill: atomic files in a folder keyed by the run, and resuming from them.

The folder's name hashes everything that determines the run's result (the
training data, the codebook, the pretraining parameters except where and how it
runs), so changed parameters never resume from a stale checkpoint. Each file is
written to a temporary name and renamed (``selfsup.atomic``): a kill leaves the
previous checkpoint intact. Only the newest ``KEEP`` files stay.

A checkpoint holds the run's ``Progress``, the method's and optimizer's states,
the step plan, the batch-order generator's state at the start of the epoch and
every rank's random states, so a resumed run continues bit for bit on CPU.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from selfsup import distributed
from selfsup.atomic import atomic_path
from selfsup.config import PretrainingParams
from selfsup.data.store import content_hash
from selfsup.data.training_views import TrainingViews
from selfsup.methods.base import Method
from selfsup.schedule import StepPlan

logger = logging.getLogger(__name__)

TRAINING_STATE_FORMAT = "selfsup.training-state/1"
KEEP = 2
# Knobs that change where and how fast a run trains, not what it computes.
NOT_IN_RUN_KEY = {"checkpoint", "distributed", "device", "compile"}
_FILE = re.compile(r"step-(\d{9})\.pt")


@dataclass
class Progress:
    """Where the run stands; with the model, optimizer and RNG states it is what a checkpoint holds."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    elapsed_s: float = 0.0
    records: list[dict] = field(default_factory=list)  # training_history rows so far
    spreads: list[tuple[int, float]] = field(default_factory=list)  # collapse monitor readings
    resumed_from: int | None = None


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


def checkpoint_folder(params: PretrainingParams, views: TrainingViews, codebook: np.ndarray) -> CheckpointFolder | None:
    """The folder of this run's checkpoints, or None when ``pretraining.checkpoint.directory`` keeps none."""
    if params.checkpoint.directory is None:
        return None
    key = run_key(views.data_key, params, codebook)
    return CheckpointFolder(Path(params.checkpoint.directory) / f"{params.method}-{key}")


def save_state(
    folder: CheckpointFolder,
    progress: Progress,
    plan: StepPlan,
    method: Method,
    optimizer: torch.optim.Optimizer,
    batch_order_rng: torch.Tensor,
) -> None:
    """Checkpoint the run as it stands; ``batch_order_rng`` is the generator's state that draws this epoch's order.

    A collective: every rank calls it at the same steps, and rank 0 writes every rank's random states.
    """
    rng = _all_ranks(rng_state())
    if distributed.rank() != 0:
        return
    state = {
        "format": TRAINING_STATE_FORMAT,
        "step": progress.step,
        "epoch": progress.epoch,
        "step_in_epoch": progress.step_in_epoch,
        "elapsed_s": progress.elapsed_s,
        "plan": plan.state(),
        "method": method.state_dict(),
        "optimizer": optimizer.state_dict(),
        "batch_order_rng": batch_order_rng,
        "rng": rng,
        "records": progress.records,
        "spreads": [list(s) for s in progress.spreads],
    }
    folder.save(state, progress.step)


def resume(
    folder: CheckpointFolder | None,
    method: Method,
    optimizer: torch.optim.Optimizer,
    plan: StepPlan,
    generator: torch.Generator,
) -> Progress:
    """Restore the newest checkpoint of this run into the objects given; a fresh start when there is none
    (or no folder to hold one).

    Rank 0 reads it and sends it to the others, so only rank 0's disk needs to hold checkpoints.
    """
    if folder is None:
        return Progress()
    found = folder.latest() if distributed.rank() == 0 else None
    if distributed.is_distributed():
        shared = [found]
        dist.broadcast_object_list(shared, src=0)
        found = shared[0]
    if found is None:
        return Progress()
    state, path = found
    if distributed.rank() == 0:
        logger.info("Resuming from step %d (%s)", state["step"], path)
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    plan.restore(state["plan"])
    generator.set_state(state["batch_order_rng"])
    _restore_rng(state["rng"])
    return Progress(
        step=state["step"],
        epoch=state["epoch"],
        step_in_epoch=state["step_in_epoch"],
        elapsed_s=state["elapsed_s"],
        records=state["records"],
        spreads=[tuple(s) for s in state["spreads"]],
        resumed_from=state["step"],
    )


def _restore_rng(per_rank: list[dict]) -> None:
    """This rank's random states, when the checkpoint was written by as many processes as this run has."""
    if len(per_rank) == distributed.world_size():
        set_rng_state(per_rank[distributed.rank()])
        return
    logger.warning(
        "The checkpoint was written by %d processes, this run has %d: random masks and noise will differ "
        "from the original run's",
        len(per_rank),
        distributed.world_size(),
    )


def _all_ranks(value):
    """``[value of rank 0, value of rank 1, …]`` on every rank (a one-element list in one process)."""
    if not distributed.is_distributed():
        return [value]
    values = [None] * distributed.world_size()
    dist.all_gather_object(values, value)
    return values
