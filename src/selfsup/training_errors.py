"""Why pretraining stops with an error, each message naming the parameter to change.

A batch or views that do not fit the data, a loss that diverged, a step that ran out of memory.
"""

from __future__ import annotations

import torch

from selfsup.checkpoint import CheckpointFolder
from selfsup.config import PretrainingParams


def check_fits(n_images: int, views_per_image: int | None, n_views: int, params: PretrainingParams) -> None:
    """Refuse a batch larger than the training set, or a method that needs more views than are cached."""
    if n_images < params.batch_size:
        raise ValueError(
            f"pretraining.batch_size={params.batch_size} is larger than the {n_images} training images; "
            "lower pretraining.batch_size"
        )
    if views_per_image is not None and views_per_image < n_views:
        raise ValueError(
            f"{params.method} needs {n_views} views per image, the view cache has {views_per_image}; "
            "raise augmentation.views_per_image"
        )


def diverged(
    loss_value: float, step: int, epoch: int, params: PretrainingParams, folder: CheckpointFolder | None
) -> FloatingPointError:
    """The error of a non-finite loss: where it happened, what to change, what checkpoint is left."""
    files = folder.files() if folder is not None else []
    kept = (
        f"the last good checkpoint, {files[-1]}, is kept"
        if files
        else "no checkpoint holds an earlier state (pretraining.checkpoint.directory keeps them)"
    )
    return FloatingPointError(
        f"pretraining loss became {loss_value} at step {step} (epoch {epoch}): the training diverged and was "
        f"stopped before the update. Lower pretraining.learning_rate (now {params.learning_rate}) or raise "
        f"pretraining.warmup_epochs (now {params.warmup_epochs}); {kept}"
    )


def is_out_of_memory(exc: RuntimeError) -> bool:
    """Whether ``exc`` is an allocator failure, on CUDA or on the CPU."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    message = str(exc)
    return "DefaultCPUAllocator: can't allocate memory" in message or "not enough memory" in message


def out_of_memory(exc: RuntimeError, step: int, params: PretrainingParams, device: torch.device) -> MemoryError:
    """The error of a step that ran out of memory: the batch size to lower, and what the allocator said."""
    world = params.distributed.world_size
    per_process = f" ({params.batch_size // world} per process)" if world > 1 else ""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return MemoryError(
        f"out of memory at pretraining step {step} on {device} with pretraining.batch_size={params.batch_size}"
        f"{per_process}: lower pretraining.batch_size (or spread it over more processes with "
        f"pretraining.distributed.nproc_per_node). The allocator said: {detail}"
    )
