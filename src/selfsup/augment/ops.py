"""The augmentation operations as batched tensor operations, per-sample parameters (any device).

Each matches torchvision's functional op on one image (tests check each):

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
* solarize: ``x >= 0.5 -> 1 - x``.
"""

from __future__ import annotations

import functools

import torch

_LUMA = (0.299, 0.587, 0.114)


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


def crop_taps(top, left, height, width, image_size, size, flip=None):
    """Row taps then column taps of the boxes, each (index, weight) of shape (n, out, 2)."""
    rows = _linear_taps(top, height, image_size[0], size[0])
    columns = _linear_taps(left, width, image_size[1], size[1], flip)
    return rows, columns


def crop_swapped(x: torch.Tensor, rows, columns, gain_rows=1.0, gain_columns=None) -> torch.Tensor:
    """x (n, C, H, W) resampled with the taps of ``crop_taps``, returned transposed (n, C, w, h).

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
    taps = crop_taps(top, left, height, width, images.shape[-2:], size, flip)
    gain = 1 / 255 if images.dtype == torch.uint8 else 1.0
    return crop_swapped(images.float(), *taps, gain).transpose(2, 3)


# --- colour ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def gray_weights(channels: int, device) -> torch.Tensor:
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
    channel_means = x.mean(dim=(2, 3)) * gray_weights(c, x.device)
    mean = channel_means.sum(dim=1).view(n, 1, 1, 1)
    contrast = contrast.view(n, 1, 1, 1)
    x = x.mul_(contrast).add_((1 - contrast) * mean).clamp_(0, 1)
    if saturation is None or c != 3:
        return x
    # s x + (1 - s) gray(x), as one 3x3 matrix per sample
    s = saturation.view(n, 1, 1)
    mix = s * _eye3(x.device) + (1 - s) * gray_weights(3, x.device)
    return torch.bmm(mix, x.view(n, 3, -1)).view_as(x).clamp_(0, 1)


@functools.lru_cache(maxsize=4)
def _eye3(device) -> torch.Tensor:
    return torch.eye(3, device=device)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma, one channel (n, 1, H, W); the view repeats it over the channels at the end."""
    n, c = x.shape[:2]
    weights = gray_weights(c, x.device).view(1, 1, c).expand(n, 1, c)
    return torch.bmm(weights, x.reshape(n, c, -1)).view(n, 1, *x.shape[2:])


def solarize(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    return torch.where(x >= threshold, 1.0 - x, x)


# --- blur -----------------------------------------------------------------------------------


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
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


def blur_swapped(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
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
    return blur_swapped(x, gaussian_kernels(sigma, radius)).transpose(2, 3)
