"""IDX files (the MNIST / Fashion-MNIST format), gzipped or not, into uint8 (N, 1, H, W) and labels.

Plain library code (NumPy, stdlib): no Kedro here. Every error names the file it is about.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np

from selfsup.data.labels import integer_labels
from selfsup.errors import DataError

_GZIP_MAGIC = b"\x1f\x8b"
# IDX type codes; multi-byte items are stored big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or not.

    Gzip is recognised by its magic bytes, not by the file name. The header is two zero
    bytes, a type code, the number of dimensions and that many big-endian uint32 sizes.
    Returns the payload with the header's shape and a native-endian dtype.
    """
    raw = _read_maybe_gzipped(Path(path))
    dtype, shape, header_size = _parse_idx_header(raw, path)
    count = math.prod(shape)
    expected = count * dtype.itemsize
    actual = len(raw) - header_size
    if actual != expected:
        raise DataError(
            f"{path}: payload is {actual} bytes but the header's shape {shape} of {dtype.name} needs {expected} bytes"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header_size, count=count).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_idx_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read matching IDX image and label files: uint8 (N, 1, H, W) and int64 (N,)."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    both = f"{images_path}, {labels_path}"
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{both}: the images file must hold 3-D uint8 (N, H, W), got {images.ndim}-D {images.dtype}")
    if labels.ndim != 1:
        raise DataError(f"{both}: the labels file must be 1-D, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{both}: {len(images)} images but {len(labels)} labels")
    return images[:, None, :, :], integer_labels(labels, len(images), both)


def read_idx_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """The shape an IDX file's header announces, without reading the payload."""
    path = Path(path)
    with path.open("rb") as file:
        is_gzip = file.read(2) == _GZIP_MAGIC
    with gzip.open(path, "rb") if is_gzip else path.open("rb") as file:
        start = file.read(4)
        ndim = start[3] if len(start) == 4 else 0
        return _parse_idx_header(start + file.read(4 * ndim), path)[1]


def _read_maybe_gzipped(path: Path) -> bytes:
    with path.open("rb") as file:
        is_gzip = file.read(2) == _GZIP_MAGIC
    if is_gzip:
        with gzip.open(path, "rb") as file:
            return file.read()
    return path.read_bytes()


def _parse_idx_header(raw: bytes, path) -> tuple[np.dtype, tuple[int, ...], int]:
    """The dtype, shape and header length of an IDX file's bytes."""
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    type_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or type_code not in _IDX_DTYPES:
        raise DataError(f"{path}: wrong magic number 0x{magic:08x} ({magic}); not an IDX file")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: header announces {ndim} dimensions but the file ends after {len(raw)} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    return _IDX_DTYPES[type_code], shape, header_size
