"""The canonical uint8 image store: where it is built, its hash and channel statistics.

Readers decode into an array from an ``Allocate`` callable. In memory by
default; a ``ScratchStore`` hands out a memory-mapped ``.npy`` file instead, so
ingesting a dataset larger than RAM holds only the chunk being decoded, and
``persist_store`` then moves that file into the catalog's place (a rename on the
same filesystem, a streamed copy otherwise).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from selfsup.atomic import atomic_path
from selfsup.resources import check_free_space

_CHUNK = 1 << 24
SCRATCH_PREFIX = ".images-scratch-"

Allocate = Callable[[tuple[int, ...]], np.ndarray]


def allocate_in_memory(shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, dtype=np.uint8)


class ScratchStore:
    """Allocates uint8 stores as memory-mapped files in ``directory``; removes any a killed run left.

    Used as a context manager, it also removes its own files when the block raises.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.paths: list[Path] = []

    def __enter__(self) -> ScratchStore:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is not None:
            for path in self.paths:
                path.unlink(missing_ok=True)

    def __call__(self, shape: tuple[int, ...]) -> np.memmap:
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob(f"{SCRATCH_PREFIX}*.npy"):
            leftover.unlink()
        check_free_space(
            self.directory,
            int(np.prod(shape)),
            f"the image store ({' × '.join(map(str, shape))} bytes)",
            "ingestion.image_size",
        )
        path = self.directory / f"{SCRATCH_PREFIX}{uuid.uuid4().hex}.npy"
        self.paths.append(path)
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)


def is_scratch(data: np.ndarray) -> bool:
    filename = getattr(data, "filename", None)
    return filename is not None and Path(filename).name.startswith(SCRATCH_PREFIX)


def persist_store(data: np.memmap, target: str | os.PathLike) -> None:
    """Move a scratch store to ``target``: renamed when it is the whole file, else streamed; atomic either way."""
    source, target = Path(data.filename), Path(target)
    data.flush()
    whole_file = np.load(source, mmap_mode="r").shape == data.shape
    try:
        if whole_file and os.stat(source).st_dev == os.stat(target.parent).st_dev:
            os.replace(source, target)
            return
        check_free_space(target.parent, data.nbytes, f"{target} ({data.shape} uint8)", "ingestion.image_size")
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            np.lib.format.write_array_header_1_0(handle, {"descr": "|u1", "fortran_order": False, "shape": data.shape})
            rows = max(1, _CHUNK // max(1, data[:1].nbytes))
            chunks = (data[start : start + rows] for start in range(0, len(data), rows))
            handle.writelines(np.ascontiguousarray(chunk).tobytes() for chunk in chunks)
    finally:
        source.unlink(missing_ok=True)


def content_hash(array: np.ndarray, *extra: str) -> str:
    """SHA-256 over an array's shape, dtype and bytes (chunked, memmap friendly)."""
    digest = hashlib.sha256()
    digest.update(f"{array.shape}|{array.dtype}".encode())
    rows = max(1, _CHUNK // max(1, array[:1].nbytes))
    for start in range(0, len(array), rows):
        digest.update(np.ascontiguousarray(array[start : start + rows]).tobytes())
    for item in extra:
        digest.update(item.encode())
    return digest.hexdigest()


def channel_stats(array: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units of a uint8 (N, ..., C, H, W) array, chunked."""
    channels = array.shape[-3]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    count = 0
    rows = max(1, _CHUNK // max(1, array[:1].nbytes))
    for start in range(0, len(array), rows):
        chunk = np.asarray(array[start : start + rows], dtype=np.float64) / 255.0
        chunk = np.moveaxis(chunk, -3, 0).reshape(channels, -1)
        total += chunk.sum(axis=1)
        total_sq += (chunk**2).sum(axis=1)
        count += chunk.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    return mean.tolist(), std.tolist()
