"""Batched view generation with per-sample random parameters.

All random parameters of a batch are drawn first, per image (``_draw``). On the
CPU, ``selfsup.augment_kernel`` then computes each view in one compiled loop.
On other devices (CUDA) this module's tensor operations do: images are
processed in chunks of samples that share *which* operations apply (colour
jitter, grayscale, blur, solarize), so an operation costs a pass over the
samples it applies to and nothing else. Both give the same views.

The operations and their per-image definitions (tests check each against
torchvision's functional op):

* random resized crop + horizontal flip + translation: bilinear resampling of a
  real-valued box, separable, as two ``embedding_bag`` passes over image rows
  (two taps per output row, zero weight outside the image = zero padding);
  matches ``resized_crop(..., antialias=False)`` for the same box.
* colour jitter, in the fixed order brightness, contrast, saturation, each
  clamped to [0, 1] like ``adjust_brightness``/``adjust_contrast``/
  ``adjust_saturation``; grayscale weights 0.299/0.587/0.114 (PIL's; torchvision
  tensors use 0.2989).
* grayscale: luma replicated over the three channels (``rgb_to_grayscale``).
* Gaussian blur: separable, reflect padding, radius ``ceil(2 * sigma_max)``
  (``gaussian_blur`` with kernel size ``2 * radius + 1``), as ``embedding_bag``
  passes with a per-sample kernel.
* solarize: ``x >= 0.5 -> 1 - x``; Gaussian noise; final clamp to [0, 1].

Inputs are uint8 (B, C, H, W) or [0, 1] float; outputs float32 (B, C, h, w).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from selfsup.config import AugmentationParams

# Bump when the meaning of AugmentationParams changes, so old caches are rebuilt.
AUGMENT_VERSION = "4"

_LUMA = (0.299, 0.587, 0.114)
# Floats per chunk: a chunk's working tensors stay in L2 while every op passes over them.
_CHUNK_ELEMENTS = 1 << 19


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=device)


def _bernoulli(n: int, p: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) < p


# --- separable resampling: output row r of each sample mixes a few input rows ---------------


def _mix_rows(x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``out[b, c, r] = sum_k weight[b, r, k] * x[b, c, index[b, r, k]]`` for x (n, C, R, L).

    One ``embedding_bag`` over the length-L rows of x: an operation along dim -2 with
    per-sample taps, the same for every channel.
    """
    n, c, rows, length = x.shape
    out_rows, taps = index.shape[1:]
    flat_index = (index.unsqueeze(1) + _row_bases(n, c, rows, x.device)).reshape(-1)
    flat_weight = weight.unsqueeze(1).expand(n, c, out_rows, taps).reshape(-1)
    offsets = _bag_offsets(n * c * out_rows, taps, x.device)
    # torch.embedding_bag directly: F.embedding_bag's checks cost more than the op on small chunks
    out = torch.embedding_bag(x.reshape(-1, length), flat_index, offsets, False, 0, False, flat_weight)[0]
    return out.view(n, c, out_rows, length)


@functools.lru_cache(maxsize=64)
def _row_bases(n: int, c: int, rows: int, device) -> torch.Tensor:
    """(n, c, 1, 1) index of each (sample, channel)'s first row among x's rows."""
    return (torch.arange(n * c, device=device) * rows).view(n, c, 1, 1)


@functools.lru_cache(maxsize=64)
def _bag_offsets(bags: int, taps: int, device) -> torch.Tensor:
    return torch.arange(0, bags * taps, taps, device=device)


def _linear_taps(start: torch.Tensor, size: torch.Tensor, size_in: int, size_out: int, flip=None):
    """Bilinear taps of the box [start, start + size) resampled to ``size_out`` points.

    With half-pixel centres (``align_corners=False``) output j samples input
    ``start + size * (j + 1/2) / size_out - 1/2``; taps outside the input get weight 0.
    Returns index and weight, both (n, size_out, 2).
    """
    j = torch.arange(size_out, device=start.device, dtype=torch.float32) + 0.5
    source = start[:, None] + size[:, None] * j / size_out - 0.5
    if flip is not None:
        source = torch.where(flip[:, None], source.flip(1), source)
    low = source.floor()
    frac = source - low
    index = torch.stack([low, low + 1], dim=-1)
    weight = torch.stack([1 - frac, frac], dim=-1) * ((index >= 0) & (index <= size_in - 1))
    return index.clamp(0, size_in - 1).long(), weight


def _crop_taps(top, left, height, width, image_size, size, flip=None):
    """Row taps then column taps of the boxes, each (index, weight) of shape (n, out, 2)."""
    rows = _linear_taps(top, height, image_size[0], size[0])
    columns = _linear_taps(left, width, image_size[1], size[1], flip)
    return rows, columns


def _crop_swapped(x: torch.Tensor, rows, columns, gain_rows=1.0, gain_columns=None) -> torch.Tensor:
    """x (n, C, H, W) resampled with the taps of ``_crop_taps``, returned transposed (n, C, w, h).

    The second pass runs on transposed rows. Gains scale the pixels for free: 1/255 for
    uint8 input, a per-sample (n,) brightness factor.
    """
    index, weight = rows
    x = _mix_rows(x, index, weight * gain_rows)  # (n, C, h, W)
    x = x.transpose(2, 3).contiguous()  # (n, C, W, h)
    index, weight = columns
    if gain_columns is not None:
        weight = weight * gain_columns.view(-1, 1, 1)
    return _mix_rows(x, index, weight)  # (n, C, w, h)


def resized_crop(images, top, left, height, width, size, flip=None) -> torch.Tensor:
    """The crop step alone, (n, C, h, w): per-sample boxes, bilinear, optional horizontal flip."""
    taps = _crop_taps(top, left, height, width, images.shape[-2:], size, flip)
    gain = 1 / 255 if images.dtype == torch.uint8 else 1.0
    return _crop_swapped(images.float(), *taps, gain).transpose(2, 3)


# --- colour ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _gray_weights(channels: int, device) -> torch.Tensor:
    if channels == 3:
        return torch.tensor(_LUMA, device=device)
    return torch.full((channels,), 1 / channels, device=device)


def color_jitter(x: torch.Tensor, brightness, contrast, saturation=None, scaled=False) -> torch.Tensor:
    """Brightness, then contrast, then saturation (RGB only), per-sample factors (n,).

    Each step is clamped to [0, 1], as torchvision's ``adjust_*``. ``scaled``: x is
    already ``brightness * image`` (the crop applies the factor for free), only the
    clamp is left. Modifies x in place.
    """
    n, c = x.shape[:2]
    if not scaled:
        x = x.mul_(brightness.view(n, 1, 1, 1))
    x = x.clamp_(0, 1)
    channel_means = x.mean(dim=(2, 3)) * _gray_weights(c, x.device)
    mean = channel_means.sum(dim=1).view(n, 1, 1, 1)
    contrast = contrast.view(n, 1, 1, 1)
    x = x.mul_(contrast).add_((1 - contrast) * mean).clamp_(0, 1)
    if saturation is None or c != 3:
        return x
    # s x + (1 - s) gray(x), as one 3x3 matrix per sample
    s = saturation.view(n, 1, 1)
    mix = s * _eye3(x.device) + (1 - s) * _gray_weights(3, x.device)
    return torch.bmm(mix, x.view(n, 3, -1)).view_as(x).clamp_(0, 1)


@functools.lru_cache(maxsize=4)
def _eye3(device) -> torch.Tensor:
    return torch.eye(3, device=device)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma, one channel (n, 1, H, W); the view repeats it over the channels at the end."""
    n, c = x.shape[:2]
    weights = _gray_weights(c, x.device).view(1, 1, c).expand(n, 1, c)
    return torch.bmm(weights, x.reshape(n, c, -1)).view(n, 1, *x.shape[2:])


def solarize(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    return torch.where(x >= threshold, 1.0 - x, x)


# --- blur -----------------------------------------------------------------------------------


def _blur_radius(p: AugmentationParams, size: tuple[int, int]) -> int:
    return min(max(1, math.ceil(2 * p.blur_sigma[1])), (min(size) - 1) // 2)


def _gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """(n, 2 * radius + 1) normalised Gaussian kernels, one per sigma."""
    offsets = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma[:, None] ** 2))
    return kernel / kernel.sum(dim=1, keepdim=True)


@functools.lru_cache(maxsize=16)
def _reflected_neighbours(rows: int, radius: int) -> torch.Tensor:
    """(rows, 2 * radius + 1) row indices of each row's neighbours, reflected at the edges."""
    index = torch.arange(rows)[:, None] + torch.arange(-radius, radius + 1)
    index = torch.where(index < 0, -index, index)
    return torch.where(index > rows - 1, 2 * (rows - 1) - index, index)


def _blur_swapped(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable blur with reflect padding, per-sample kernel (n, k).

    x (n, C, A, B) gives the blurred image transposed, (n, C, B, A), contiguous.
    """
    for second in (False, True):
        n, rows = len(x), x.shape[-2]
        index = _reflected_neighbours(rows, kernel.shape[1] // 2).to(x.device)
        x = _mix_rows(x, index.expand(n, -1, -1), kernel.unsqueeze(1).expand(-1, rows, -1))
        if not second:
            x = x.transpose(2, 3).contiguous()
    return x


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """The blur step alone: kernel size ``2 * radius + 1``, per-sample sigma (n,)."""
    return _blur_swapped(x, _gaussian_kernels(sigma, radius)).transpose(2, 3)


# --- parameters and the pipeline ------------------------------------------------------------


@dataclass
class _Plan:
    """Every random parameter of a batch, per sample, in the form the operations use."""

    rows: tuple[torch.Tensor, torch.Tensor]  # crop taps (index, weight), (n, h, 2)
    columns: tuple[torch.Tensor, torch.Tensor]  # (n, w, 2), flip included
    jitter: torch.Tensor  # bool: colour jitter applies
    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor
    gray: torch.Tensor  # bool
    blur: torch.Tensor  # bool
    sigma: torch.Tensor  # blur
    solarize: torch.Tensor  # bool

    def take(self, rows) -> _Plan:
        """The plan of samples ``rows`` (an index tensor or a slice)."""

        def pick(value):
            return tuple(v[rows] for v in value) if isinstance(value, tuple) else value[rows]

        return _Plan(*(pick(value) for value in vars(self).values()))


def _draw_crop(n: int, image_size: tuple[int, int], p: AugmentationParams, gen, device):
    """Random resized crop boxes (top, left, height, width in pixels), translation, flip."""
    image_h, image_w = image_size
    area = _uniform(n, *p.crop_scale, gen, device) * image_h * image_w
    log_ratio = _uniform(n, math.log(p.crop_ratio[0]), math.log(p.crop_ratio[1]), gen, device)
    ratio = torch.exp(log_ratio)
    width = torch.sqrt(area * ratio).clamp(max=image_w)
    height = torch.sqrt(area / ratio).clamp(max=image_h)
    left = (image_w - width) * torch.rand(n, generator=gen, device=device)
    top = (image_h - height) * torch.rand(n, generator=gen, device=device)
    left = left + p.max_translate * image_w * _uniform(n, -1, 1, gen, device)
    top = top + p.max_translate * image_h * _uniform(n, -1, 1, gen, device)
    flip = _bernoulli(n, p.hflip_p, gen, device)
    return top, left, height, width, flip


def _draw(n: int, channels: int, image_size, size, p: AugmentationParams, gen, device) -> _Plan:
    """All parameters, drawn in a fixed order (the order of the operations)."""
    top, left, height, width, flip = _draw_crop(n, image_size, p, gen, device)
    crop = _crop_taps(top, left, height, width, image_size, size, flip)
    jitter = _bernoulli(n, p.color_jitter_p, gen, device)
    brightness = _uniform(n, 1 - p.brightness, 1 + p.brightness, gen, device)
    contrast = _uniform(n, 1 - p.contrast, 1 + p.contrast, gen, device)
    saturation = _uniform(n, 1 - p.saturation, 1 + p.saturation, gen, device)
    never = torch.zeros(n, dtype=torch.bool, device=device)
    gray = _bernoulli(n, p.grayscale_p, gen, device) if channels == 3 and p.grayscale_p > 0 else never
    sigma, blur = torch.ones(n, device=device), never
    if p.blur_p > 0:
        sigma = _uniform(n, *p.blur_sigma, gen, device)
        blur = _bernoulli(n, p.blur_p, gen, device) if _blur_radius(p, size) >= 1 else never
    solar = _bernoulli(n, p.solarize_p, gen, device) if p.solarize_p > 0 else never
    return _Plan(*crop, jitter, brightness, contrast, saturation, gray, blur, sigma, solar)


def _chunks(plan: _Plan, chunk: int) -> tuple[torch.Tensor, list[slice]]:
    """Samples ordered so that those sharing which operations apply are adjacent, and
    slices of that order: groups cut into pieces of at most ``chunk`` samples."""
    key = (plan.jitter * 8 + plan.gray * 4 + plan.blur * 2 + plan.solarize).cpu()
    order = torch.argsort(key, stable=True)
    pieces, start = [], 0
    for count in torch.bincount(key, minlength=16).tolist():
        pieces += [slice(start + i, start + min(i + chunk, count)) for i in range(0, count, chunk)]
        start += count
    return order, pieces


def _augment_chunk(x, plan: _Plan, p: AugmentationParams, noise, gain) -> torch.Tensor:
    """Views of a chunk whose samples share which operations apply; returns (n, C, h, w)."""
    channels = x.shape[1]
    brightness = plan.brightness if plan.jitter[0] else None
    x = _crop_swapped(x, plan.rows, plan.columns, gain, brightness)  # (n, C, w, h) from here
    if plan.jitter[0]:
        saturation = plan.saturation if p.saturation > 0 else None
        x = color_jitter(x, plan.brightness, plan.contrast, saturation, scaled=True)
    if plan.gray[0]:
        x = grayscale(x)  # one channel until the end: blur and solarize act alike on each
    transposed = True
    if plan.blur[0]:
        kernel = _gaussian_kernels(plan.sigma, _blur_radius(p, x.shape[-2:]))
        x, transposed = _blur_swapped(x, kernel), False  # (n, C, h, w)
    if plan.solarize[0]:
        x = solarize(x)
    if noise is not None:
        x = x + p.noise_std * (noise.transpose(2, 3) if transposed else noise)
    x = x.clamp_(0.0, 1.0).expand(-1, channels, -1, -1)
    return x.transpose(2, 3) if transposed else x


@torch.no_grad()
def augment_batch(
    images: torch.Tensor,
    params: AugmentationParams,
    generator: torch.Generator,
    output_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """One random view of each image in ``images`` (uint8 or [0, 1] float, B×C×H×W).

    On the CPU the fused kernel of ``selfsup.augment_kernel`` computes the views; on
    other devices the batched tensor operations of this module. Same parameters, same views.
    """
    n, c, h, w = images.shape
    size = tuple(output_size or (h, w))
    gain = 1 / 255 if images.dtype == torch.uint8 else 1.0
    plan = _draw(n, c, (h, w), size, params, generator, images.device)
    noise = None
    if params.noise_std > 0:
        noise = torch.randn((n, c, *size), generator=generator, device=images.device)
    augment = _augment_fused if images.device.type == "cpu" else _augment_chunked
    return augment(images, plan, params, noise, gain, size)


def _augment_chunked(images, plan: _Plan, params: AugmentationParams, noise, gain, size) -> torch.Tensor:
    """The views with batched tensor operations, chunk by chunk (any device)."""
    n, c, h, w = images.shape
    out = torch.empty(n, c, *size, device=images.device)
    chunk = max(1, _CHUNK_ELEMENTS // (c * max(h * w, size[0] * size[1])))
    order, pieces = _chunks(plan, chunk)
    order = order.to(images.device)
    plan = plan.take(order)

    for piece in pieces:
        rows = order[piece]
        x = images.index_select(0, rows).float()
        chunk_noise = None if noise is None else noise.index_select(0, rows)
        out.index_copy_(0, rows, _augment_chunk(x, plan.take(piece), params, chunk_noise, gain))
    return out


def _split_taps(index: torch.Tensor, weight: torch.Tensor) -> tuple[np.ndarray, ...]:
    """(n, size, 2) taps as four contiguous (n, size) arrays: both indices, both weights.

    Unsigned indices: numba checks signed ones for wraparound, which stops the gather vectorizing.
    """
    index, weight = index.to(torch.int32).numpy().view(np.uint32), weight.numpy()
    return tuple(np.ascontiguousarray(t[..., k]) for t in (index, weight) for k in (0, 1))


def _significant_radii(kernels: torch.Tensor) -> np.ndarray:
    """Per kernel, how many taps each side of the centre weigh 1e-8 or more: the others change
    no float32 pixel, and a small sigma needs fewer taps than the largest."""
    return ((kernels >= 1e-8).sum(dim=1) - 1).div(2, rounding_mode="floor").numpy()


def _augment_fused(images, plan: _Plan, params: AugmentationParams, noise, gain, size) -> torch.Tensor:
    """The views with the fused CPU kernel."""
    from selfsup import augment_kernel  # numba: compiled on first use, then cached on disk

    n, c = images.shape[:2]
    source = images if images.dtype == torch.uint8 else images.float()
    radius = _blur_radius(params, size) if bool(plan.blur.any()) else 0
    kernels = _gaussian_kernels(plan.sigma, radius)
    noise_std = params.noise_std if noise is not None else 0.0
    noise = noise if noise is not None else torch.zeros(1, 1, 1, 1)
    arrays = (
        source.contiguous().numpy(),
        np.float32(gain),
        plan.rows[0].numpy(),
        plan.rows[1].numpy(),
        *_split_taps(*plan.columns),
        plan.jitter.numpy(),
        plan.brightness.numpy(),
        plan.contrast.numpy(),
        plan.saturation.numpy(),
        params.saturation > 0 and c == 3,
        plan.gray.numpy(),
        _gray_weights(c, images.device).numpy(),
        plan.blur.numpy(),
        kernels.numpy(),
        _significant_radii(kernels),
        plan.solarize.numpy(),
        noise.contiguous().numpy(),
        np.float32(noise_std),
    )
    out = torch.empty(n, c, *size)
    augment_kernel.run(arrays, out.numpy())
    return out


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round().to(torch.uint8)


def iter_view_chunks(
    images: np.ndarray, positions: np.ndarray, params: AugmentationParams
) -> Iterator[tuple[slice, np.ndarray]]:
    """Views of ``images[positions]`` in chunks: ``(rows, uint8 (rows, K, C, H, W))``.

    Deterministic by ``params.seed``; only one chunk is in memory at a time.
    """
    generator = torch.Generator().manual_seed(params.seed)
    for start in range(0, len(positions), params.batch_size):
        stop = min(start + params.batch_size, len(positions))
        batch = torch.from_numpy(np.array(images[positions[start:stop]]))
        views = [
            to_uint8(augment_batch(batch, params, generator, params.output_size)) for _ in range(params.views_per_image)
        ]
        yield slice(start, stop), torch.stack(views, dim=1).numpy()
