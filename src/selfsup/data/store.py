"""Helpers for the canonical uint8 image store."""

from __future__ import annotations

import hashlib

import numpy as np

_CHUNK = 1 << 24


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
