"""The CPU path of ``selfsup.augment``: every operation of a view fused in one compiled loop.

Batched tensor operations pay a pass over memory per operation, a transpose
between the two resampling directions and a scatter back into batch order;
at 96×96 RGB that was most of the time. Here numba compiles one loop per
sample that crops, jitters, greys, blurs, solarizes and adds noise while the
view sits in the core's cache, and writes it once. The same idea as FFCV's
numba-compiled pipelines. The random parameters are ``plan.Plan``'s, drawn by
the same generator, so both paths give the same views up to float rounding (a
test holds them to 1e-5); ``fused`` hands them over grouped in a ``Batch``.

Samples are split over ``torch.get_num_threads()`` threads; the kernel
releases the GIL. Each sample is computed by one thread in a fixed order, so
the views do not depend on the thread count.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba
import numpy as np
import torch

# Below this many samples per thread, splitting costs more than it saves.
_MIN_SAMPLES_PER_THREAD = 4
# Floats per strip of a blur pass: 4 KB of output, in L1 with its inputs across all taps.
_STRIP = 1024


class CropTaps(NamedTuple):
    """The bilinear taps of each sample's crop (flip included)."""

    row_index: np.ndarray  # (n, h, 2) int64
    row_weight: np.ndarray  # (n, h, 2) float32
    # The column taps split into their two indices and two weights, (n, w) each; unsigned
    # indices: numba checks signed ones for wraparound, which stops the gather vectorizing.
    column_a: np.ndarray  # uint32
    column_b: np.ndarray
    weight_a: np.ndarray  # float32
    weight_b: np.ndarray


class Colour(NamedTuple):
    """Colour jitter and grayscale, per sample."""

    jitter: np.ndarray  # (n,) bool: brightness, contrast and saturation apply
    brightness: np.ndarray  # (n,) float32 factors
    contrast: np.ndarray
    saturation: np.ndarray
    use_saturation: bool  # RGB and a saturation range: the saturation step runs
    gray: np.ndarray  # (n,) bool
    luma: np.ndarray  # (C,) float32 grey weights


class Blur(NamedTuple):
    """Gaussian blur, per sample."""

    blurred: np.ndarray  # (n,) bool
    kernels: np.ndarray  # (n, 2 radius + 1) float32, the widest radius
    radii: np.ndarray  # (n,) taps each side of the centre that are not negligible


class Finish(NamedTuple):
    """Solarize and noise, per sample."""

    solarize: np.ndarray  # (n,) bool
    noise: np.ndarray  # (n, C, h, w) float32; (1, 1, 1, 1) and unread when noise_std is 0
    noise_std: np.float32


class Batch(NamedTuple):
    """The images and every parameter of their views, as the kernel reads them."""

    images: np.ndarray  # (n, C, H, W) uint8 or float32
    gain: np.float32  # 1/255 for uint8 images, else 1
    crop: CropTaps
    colour: Colour
    blur: Blur
    finish: Finish

    def as_plain_tuples(self) -> tuple:
        """The batch as nested plain tuples, the form ``views`` takes: numba's dispatcher types
        a plain tuple several times faster than a named one, on every call and under the GIL."""
        return tuple(tuple(field) if isinstance(field, tuple) else field for field in self)


@numba.njit(inline="always")
def _named(plain):
    """The ``Batch`` of ``Batch.as_plain_tuples()``."""
    images, gain, crop, colour, blur, finish = plain
    return Batch(images, gain, CropTaps(*crop), Colour(*colour), Blur(*blur), Finish(*finish))


@numba.njit(inline="always")
def _unit(v):
    return min(max(v, np.float32(0.0)), np.float32(1.0))


@numba.njit(nogil=True, cache=True)
def _crop(image, gain, row_index, row_weight, column_a, column_b, weight_a, weight_b, line, columns, x):
    """Bilinear crop of one (C, H, W) image into x (C, h, w) with the ``CropTaps`` of sample s,
    times ``gain``.

    Along W first, only for the input rows the crop reads: each row converted to
    float in ``line``, then gathered at the two taps of each output column; then along
    H, two whole rows per output row.
    """
    channels = image.shape[0]
    h, w = x.shape[1], x.shape[2]
    for c in range(channels):
        for r in range(row_index.min(), row_index.max() + 1):
            source, target = image[c, r], columns[c, r]
            for j in range(source.shape[0]):
                line[j] = source[j]
            for j in range(w):
                target[j] = weight_a[j] * line[column_a[j]] + weight_b[j] * line[column_b[j]]
        for i in range(h):
            top, bottom, target = columns[c, row_index[i, 0]], columns[c, row_index[i, 1]], x[c, i]
            w_top, w_bottom = row_weight[i, 0] * gain, row_weight[i, 1] * gain
            for j in range(w):
                target[j] = w_top * top[j] + w_bottom * bottom[j]


@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _plane_sum(plane):
    """Sum of a clamped plane, clamping it in place (a fixed vectorized order: deterministic)."""
    total = 0.0
    for p in range(plane.shape[0]):
        v = _unit(plane[p])
        plane[p] = v
        total += v
    return total


@numba.njit(nogil=True, cache=True)
def _jitter(x, contrast, saturation, use_saturation, luma):
    """Clamp (brightness came with the crop), contrast about the mean luma, saturation; in place.

    x is (C, h * w): every loop runs along a whole plane, which vectorizes.
    """
    channels, size = x.shape
    mean = 0.0
    for c in range(channels):
        mean += luma[c] * _plane_sum(x[c])
    bias = np.float32((1.0 - contrast) * mean / size)
    if not use_saturation:
        for c in range(channels):
            plane = x[c]
            for p in range(size):
                plane[p] = _unit(contrast * plane[p] + bias)
        return
    keep = np.float32(1.0) - saturation
    red, green, blue = x[0], x[1], x[2]
    for p in range(size):
        r = _unit(contrast * red[p] + bias)
        g = _unit(contrast * green[p] + bias)
        b = _unit(contrast * blue[p] + bias)
        gray = keep * (luma[0] * r + luma[1] * g + luma[2] * b)
        red[p] = _unit(saturation * r + gray)
        green[p] = _unit(saturation * g + gray)
        blue[p] = _unit(saturation * b + gray)


@numba.njit(nogil=True, cache=True)
def _grayscale(x, luma):
    """Luma into plane 0 of x (C, h * w), in place."""
    target = x[0]
    target *= luma[0]
    for c in range(1, x.shape[0]):
        source, weight = x[c], luma[c]
        for p in range(target.shape[0]):
            target[p] += weight * source[p]


@numba.njit(inline="always")
def _copy(source, target):
    # an explicit loop: numba's slice assignment does not vectorize
    for p in range(target.shape[0]):
        target[p] = source[p]


@numba.njit(nogil=True, cache=True)
def _shifted_sum(source, target, kernel, step):
    """``target[p] += sum_t kernel[t] * source[p + t * step]``, in strips that stay in L1
    while every tap passes over them (one pass per tap over the whole plane is L2-bound)."""
    size = target.shape[0]
    for start in range(0, size, _STRIP):
        stop = min(start + _STRIP, size)
        strip = target[start:stop]
        for t in range(kernel.shape[0]):
            k, shifted = kernel[t], source[start + t * step : stop + t * step]
            for p in range(stop - start):
                strip[p] += k * shifted[p]


@numba.njit(nogil=True, cache=True)
def _blur(plane, h, w, kernel, padded, scratch):
    """Separable Gaussian blur of one (h * w) plane with reflect padding, in place.

    Down the columns: the plane with ``radius`` reflected rows above and below goes
    into ``padded``, and each tap is a sum shifted by whole rows. Along the rows: each
    row with its reflected ends goes into ``padded`` (rows of w + 2 radius), each tap a
    sum shifted by one pixel over the whole flat buffer, of which the first w outputs
    of each row are kept. No tap loop has a branch, and every one vectorizes.
    """
    radius = kernel.shape[0] // 2
    size = h * w
    _copy(plane, padded[radius * w : radius * w + size])
    for e in range(1, radius + 1):
        _copy(plane[e * w : (e + 1) * w], padded[(radius - e) * w : (radius - e + 1) * w])
        _copy(plane[(h - 1 - e) * w : (h - e) * w], padded[(radius + h - 1 + e) * w : (radius + h + e) * w])
    columns = scratch[:size]
    columns[:] = 0.0
    _shifted_sum(padded, columns, kernel, w)
    wide = w + 2 * radius
    for i in range(h):
        row, target = columns[i * w : (i + 1) * w], padded[i * wide : (i + 1) * wide]
        _copy(row, target[radius : radius + w])
        for e in range(1, radius + 1):
            target[radius - e] = row[e]
            target[radius + w - 1 + e] = row[w - 1 - e]
    rows = scratch[: h * wide - 2 * radius]
    rows[:] = 0.0
    _shifted_sum(padded, rows, kernel, 1)
    for i in range(h):
        _copy(rows[i * wide : i * wide + w], plane[i * w : (i + 1) * w])


@numba.njit(nogil=True, cache=True)
def _finish(x, gray, solarize, noise, noise_std, out):
    """Solarize, noise, clamp into ``out`` (C, h * w); a grey view's plane 0 goes to every channel."""
    channels, size = out.shape
    for c in range(channels):
        source, target = x[0 if gray else c], out[c]
        if solarize:
            for p in range(size):
                v = source[p]
                target[p] = np.float32(1.0) - v if v >= 0.5 else v
        else:
            for p in range(size):
                target[p] = source[p]
        if noise_std > 0:
            extra = noise[c]
            for p in range(size):
                target[p] += noise_std * extra[p]
        for p in range(size):
            target[p] = _unit(target[p])


@numba.njit(nogil=True, cache=True)
def views(plain, out, start, stop):
    """Views of the samples ``start:stop`` of a ``Batch`` (``as_plain_tuples()``) into ``out``
    (n, C, h, w). Sample s blurs with the ``radii[s]`` taps each side of its kernel's centre."""
    batch = _named(plain)
    images, crop, colour, blur, finish = batch.images, batch.crop, batch.colour, batch.blur, batch.finish
    channels, height, width = images.shape[1:]
    h, w = out.shape[2], out.shape[3]
    line = np.empty(width, np.float32)
    columns = np.empty((channels, height, w), np.float32)
    x = np.empty((channels, h, w), np.float32)
    taps = blur.kernels.shape[1]  # the widest kernel: 2 radius + 1
    centre = taps // 2
    padded = np.empty((h + taps) * (w + taps), np.float32)
    scratch = np.empty(h * (w + taps), np.float32)
    for s in range(start, stop):
        scale = batch.gain * colour.brightness[s] if colour.jitter[s] else batch.gain
        _crop(
            images[s],
            scale,
            crop.row_index[s],
            crop.row_weight[s],
            crop.column_a[s],
            crop.column_b[s],
            crop.weight_a[s],
            crop.weight_b[s],
            line,
            columns,
            x,
        )
        planes = x.reshape(channels, h * w)
        if colour.jitter[s]:
            _jitter(planes, colour.contrast[s], colour.saturation[s], colour.use_saturation, colour.luma)
        if colour.gray[s]:
            _grayscale(planes, colour.luma)
        radius = blur.radii[s]
        if blur.blurred[s] and radius > 0:
            kernel = blur.kernels[s, centre - radius : centre + radius + 1]
            for c in range(1 if colour.gray[s] else channels):
                _blur(planes[c], h, w, kernel, padded, scratch)
        noise = finish.noise[s if finish.noise_std > 0 else 0].reshape(finish.noise.shape[1], -1)
        target = out[s].reshape(channels, h * w)
        _finish(planes, colour.gray[s], finish.solarize[s], noise, finish.noise_std, target)


@functools.lru_cache(maxsize=4)
def _pool(threads: int, pid: int) -> ThreadPoolExecutor:
    """One pool per thread count and process: a forked child inherits the pool but not its threads."""
    return ThreadPoolExecutor(threads, thread_name_prefix="selfsup-augment")


def run(batch: Batch, out: np.ndarray) -> None:
    """``views`` over all of ``out``'s samples, in blocks that the threads take as they come free
    (blurred views cost more, so equal shares would leave one thread waiting on the other)."""
    n, plain = out.shape[0], batch.as_plain_tuples()
    threads = max(1, min(torch.get_num_threads(), n // _MIN_SAMPLES_PER_THREAD))
    if threads == 1:
        views(plain, out, 0, n)
        return
    block = max(_MIN_SAMPLES_PER_THREAD, n // (8 * threads))
    jobs = [_pool(threads, os.getpid()).submit(views, plain, out, a, min(a + block, n)) for a in range(0, n, block)]
    for job in jobs:
        job.result()
