"""The label check that every reader with labels in its files shares."""

from __future__ import annotations

import numpy as np

from selfsup.errors import DataError


def integer_labels(labels: np.ndarray, count: int, source) -> np.ndarray:
    """Labels as int64 (count,), or a DataError naming ``source``."""
    if labels.ndim != 1 or len(labels) != count:
        raise DataError(f"{source}: labels must be 1-D with {count} entries, got shape {labels.shape}")
    if labels.dtype.kind in "biu":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels == np.round(labels)).all():
        return labels.astype(np.int64)
    raise DataError(f"{source}: labels must be integers, got {labels.dtype}")
