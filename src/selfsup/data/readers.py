"""File readers that turn IDX files, NumPy arrays and image files into uint8 (N, C, H, W).

Plain library code (NumPy, Pillow, stdlib): no Kedro here, so the readers can be tested
and reused on their own. Every error names the file or folder it is about.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from selfsup.data.store import Allocate, allocate_in_memory
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
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# What Pillow raises for unreadable, truncated or malformed files.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
# Rows converted at a time when scaling non-uint8 arrays, to bound the float temporaries.
_SCALE_CHUNK_BYTES = 1 << 26


# --------------------------------------------------------------------------- IDX


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
    return images[:, None, :, :], _integer_labels(labels, len(images), both)


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


# ------------------------------------------------------------------------ arrays


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
        labels = _integer_labels(labels, len(images), path)
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
        labels = _integer_labels(labels, shape[0], path)
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


def _integer_labels(labels: np.ndarray, count: int, source) -> np.ndarray:
    """Labels as int64 (count,), or a ValueError naming ``source``."""
    if labels.ndim != 1 or len(labels) != count:
        raise DataError(f"{source}: labels must be 1-D with {count} entries, got shape {labels.shape}")
    if labels.dtype.kind in "biu":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels == np.round(labels)).all():
        return labels.astype(np.int64)
    raise DataError(f"{source}: labels must be integers, got {labels.dtype}")


# ------------------------------------------------------------------------ images


class ImageDecodeError(DataError):
    """An image file that could not be decoded; the message reads ``"path: reason"``."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def decode_image(
    path: str | os.PathLike | BinaryIO, channels: int, size: tuple[int, int], name: str | None = None
) -> np.ndarray:
    """Decode one image file (a path, or an open binary file called ``name``) to uint8 (channels, H, W).

    ``size == (H, W)``.

    Conversion: the EXIF orientation is applied; 16-bit greyscale is divided by 257;
    32-bit integer ('I') and float ('F') images are clipped at 0, floats within [0, 1]
    are multiplied by 255 and values above 255 are scaled so the maximum becomes 255;
    any transparency (RGBA, LA, palette with a transparent index) is composited on
    black, the usual background of digit-like data; then the image becomes 'L'
    (channels=1, ITU-R 601-2 luma) or 'RGB' (channels=3).

    Resizing: the image is scaled with BICUBIC, keeping its aspect ratio, until it
    covers the target (the shorter side matches), then centre-cropped to exactly (H, W).
    Small images are upsampled the same way. Pillow's bicubic filter widens its support
    when shrinking, so large reductions are antialiased too.

    Any decode problem (unknown format, truncated or corrupt data) raises
    ``ImageDecodeError`` (a ValueError) whose message is ``"path: reason"`` (``name`` for a file object).
    """
    check_target(channels, size)
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            image = _to_channels(image, channels)
            image = ImageOps.fit(image, (size[1], size[0]), method=Image.Resampling.BICUBIC)
    except DECODE_ERRORS as error:
        raise ImageDecodeError(name or path, f"{type(error).__name__}: {error}") from error
    pixels = np.asarray(image, dtype=np.uint8)
    if pixels.ndim == 2:
        return pixels[None, :, :]
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def check_target(channels: int, size: Sequence[int]) -> None:
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels}")
    if len(size) != 2 or min(size) < 1:
        raise DataError(f"size must be (H, W) with positive sides, got {size}")


def _to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Convert any Pillow mode to 'L' (channels=1) or 'RGB' (channels=3)."""
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        image = _high_depth_to_l(image)
    elif image.has_transparency_data:
        image = _composite_on_black(image)
    elif image.mode not in ("1", "L", "RGB"):
        image = image.convert("RGB")  # P, CMYK, YCbCr, ...
    return image.convert("L" if channels == 1 else "RGB")


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float greyscale to 8-bit 'L'."""
    values = np.asarray(image).astype(np.float64)
    if image.mode in _SIXTEEN_BIT_MODES:
        scaled = values / 257.0
    else:
        if not np.isfinite(values).all():
            raise DataError(f"mode {image.mode} image contains NaN or inf")
        values = np.clip(values, 0.0, None)
        peak = float(values.max())
        if image.mode == "F" and peak <= 1.0:
            scaled = values * 255.0
        elif peak > 255.0:
            scaled = values * (255.0 / peak)
        else:
            scaled = values
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _composite_on_black(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(black, rgba).convert("RGB")
