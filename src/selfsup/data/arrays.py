"""NumPy array files (``.npy`` / ``.npz``) into uint8 (N, C, H, W) and optional labels.

Plain library code (NumPy, stdlib): no Kedro here. Every error names the file it is about.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from selfsup.data.labels import integer_labels
from selfsup.data.store import Allocate, allocate_in_memory
from selfsup.errors import DataError

# Rows converted at a time when scaling non-uint8 arrays, to bound the float temporaries.
_SCALE_CHUNK_BYTES = 1 << 26


def read_array_file(
    path: str | os.PathLike,
    labels_key: str = "labels",
    images_key: str = "images",
    allocate: Allocate = allocate_in_memory,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read images (and optional labels) from a ``.npy`` or ``.npz`` file into ``allocate(shape)``.

    A ``.npy`` holds images only. In a ``.npz`` the images are under ``images_key``, or
    else the first array that is not ``labels_key``; labels, if any, under ``labels_key``.
    Images may be (N, H, W) or (N, C, H, W) with any C >= 1 (multispectral is kept).

    Conversion to uint8:
      * uint8 passes through unchanged; bool becomes 0 / 255;
      * floats with every value in [0, 1] are multiplied by 255;
      * any other integer or float array is min-max scaled over the whole array to
        0..255 (a constant array becomes all 0);
      * NaN or inf is an error.
    Values are rounded to the nearest integer. Labels must be 1-D, integer-valued and
    have one entry per image; they are returned as int64.
    """
    images, labels = _load_arrays(Path(path), labels_key, images_key)
    images = _as_nchw(images, path)
    if labels is not None:
        labels = integer_labels(labels, len(images), path)
    return _to_uint8(images, path, allocate), labels


def read_array_outline(
    path: str | os.PathLike, labels_key: str = "labels", images_key: str = "images"
) -> tuple[tuple[int, ...], np.ndarray | None]:
    """The images' shape (N, C, H, W) and the labels of an array file, without loading the images."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [name.removesuffix(".npy") for name in archive.namelist()]
                image_name = images_key if images_key in names else next((n for n in names if n != labels_key), None)
                if image_name is None:
                    raise DataError(f"{path}: no image array (looked for {images_key!r}, found {names})")
                with archive.open(f"{image_name}.npy") as member:
                    shape = _npy_header_shape(member)
            labels = np.load(path, allow_pickle=False)[labels_key] if labels_key in names else None
        else:
            with path.open("rb") as file:
                shape = _npy_header_shape(file)
            labels = None
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: cannot read as .npy / .npz: {error}") from error
    if len(shape) not in (3, 4):
        raise DataError(f"{path}: images must be (N, H, W) or (N, C, H, W), got shape {shape}")
    shape = (shape[0], 1, *shape[1:]) if len(shape) == 3 else shape
    if labels is not None:
        labels = integer_labels(labels, shape[0], path)
    return tuple(int(side) for side in shape), labels


def _npy_header_shape(file) -> tuple[int, ...]:
    version = np.lib.format.read_magic(file)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read_header(file)[0]


def _load_arrays(path: Path, labels_key: str, images_key: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        # A .npy is memory-mapped, so only the chunk being converted is in memory; an .npz is read whole.
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: cannot read as .npy / .npz: {error}") from error
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded as archive:
        names = archive.files
        if images_key in names:
            image_name = images_key
        else:
            candidates = [name for name in names if name != labels_key]
            if not candidates:
                raise DataError(f"{path}: no image array (looked for {images_key!r}, found {names})")
            image_name = candidates[0]
        labels = archive[labels_key] if labels_key in names else None
        return archive[image_name], labels


def _as_nchw(images: np.ndarray, path) -> np.ndarray:
    if images.ndim == 3:
        images = images[:, None, :, :]
    if images.ndim != 4 or 0 in images.shape:
        raise DataError(f"{path}: images must be a non-empty (N, H, W) or (N, C, H, W) array, got shape {images.shape}")
    return images


def _to_uint8(images: np.ndarray, path, allocate: Allocate) -> np.ndarray:
    """Apply the conversion policy of ``read_array_file``, ``_SCALE_CHUNK_BYTES`` of input at a time."""
    if images.dtype.kind not in "biuf":
        raise DataError(f"{path}: cannot convert {images.dtype} images to uint8")
    rows = max(1, _SCALE_CHUNK_BYTES // (images[:1].size * 8))
    chunks = [slice(start, start + rows) for start in range(0, len(images), rows)]
    if images.dtype.kind == "f" and not all(np.isfinite(images[chunk]).all() for chunk in chunks):
        raise DataError(f"{path}: images contain NaN or inf")
    offset, scale = _scale_to_byte_range(images) if images.dtype.kind in "iuf" else (0.0, 255.0)
    converted = allocate(images.shape)
    for chunk in chunks:
        if images.dtype == np.uint8:
            converted[chunk] = images[chunk]
        else:
            values = images[chunk].astype(np.float64)
            converted[chunk] = np.clip(np.rint((values - offset) * scale), 0, 255)
    return converted


def _scale_to_byte_range(images: np.ndarray) -> tuple[float, float]:
    """(offset, scale) such that (value - offset) * scale lies in 0..255."""
    if images.dtype == np.uint8:
        return 0.0, 1.0
    low, high = float(images.min()), float(images.max())
    if images.dtype.kind == "f" and low >= 0.0 and high <= 1.0:
        return 0.0, 255.0
    if high == low:
        return low, 0.0
    return low, 255.0 / (high - low)
