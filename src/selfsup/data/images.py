"""Image files (anything Pillow reads) decoded to uint8 (C, H, W) at one target size and channel count.

Plain library code (NumPy, Pillow): no Kedro here. Every error names the file it is about.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from selfsup.errors import DataError

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
# What Pillow raises for unreadable, truncated or malformed files.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


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
