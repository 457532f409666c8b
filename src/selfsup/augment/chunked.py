"""The views with batched tensor operations (the path on CUDA and other non-CPU devices).

Images are processed in chunks of samples that share *which* operations apply (colour
jitter, grayscale, blur, solarize), so an operation costs a pass over the samples it
applies to and nothing else.
"""

from __future__ import annotations

import torch

from selfsup.augment.ops import blur_swapped, color_jitter, crop_swapped, gaussian_kernels, grayscale, solarize
from selfsup.augment.plan import Plan, blur_radius
from selfsup.config import AugmentationParams

# Floats per chunk: a chunk's working tensors stay in L2 while every op passes over them.
CHUNK_ELEMENTS = 1 << 19


def augment_chunked(images, plan: Plan, params: AugmentationParams, noise, gain, size) -> torch.Tensor:
    """The views with batched tensor operations, chunk by chunk (any device)."""
    n, c, h, w = images.shape
    out = torch.empty(n, c, *size, device=images.device)
    chunk = max(1, CHUNK_ELEMENTS // (c * max(h * w, size[0] * size[1])))
    order, pieces = _chunks(plan, chunk)
    order = order.to(images.device)
    plan = plan.take(order)

    for piece in pieces:
        rows = order[piece]
        x = images.index_select(0, rows).float()
        chunk_noise = None if noise is None else noise.index_select(0, rows)
        out.index_copy_(0, rows, _augment_chunk(x, plan.take(piece), params, chunk_noise, gain))
    return out


def _chunks(plan: Plan, chunk: int) -> tuple[torch.Tensor, list[slice]]:
    """Samples ordered so that those sharing which operations apply are adjacent, and
    slices of that order: groups cut into pieces of at most ``chunk`` samples."""
    key = (plan.jitter * 8 + plan.gray * 4 + plan.blur * 2 + plan.solarize).cpu()
    order = torch.argsort(key, stable=True)
    pieces, start = [], 0
    for count in torch.bincount(key, minlength=16).tolist():
        pieces += [slice(start + i, start + min(i + chunk, count)) for i in range(0, count, chunk)]
        start += count
    return order, pieces


def _augment_chunk(x, plan: Plan, p: AugmentationParams, noise, gain) -> torch.Tensor:
    """Views of a chunk whose samples share which operations apply; returns (n, C, h, w)."""
    channels = x.shape[1]
    brightness = plan.brightness if plan.jitter[0] else None
    x = crop_swapped(x, plan.rows, plan.columns, gain, brightness)  # (n, C, w, h) from here
    if plan.jitter[0]:
        saturation = plan.saturation if p.saturation > 0 else None
        x = color_jitter(x, plan.brightness, plan.contrast, saturation, scaled=True)
    if plan.gray[0]:
        x = grayscale(x)  # one channel until the end: blur and solarize act alike on each
    transposed = True
    if plan.blur[0]:
        kernel = gaussian_kernels(plan.sigma, blur_radius(p, x.shape[-2:]))
        x, transposed = blur_swapped(x, kernel), False  # (n, C, h, w)
    if plan.solarize[0]:
        x = solarize(x)
    if noise is not None:
        x = x + p.noise_std * (noise.transpose(2, 3) if transposed else noise)
    x = x.clamp_(0.0, 1.0).expand(-1, channels, -1, -1)
    return x.transpose(2, 3) if transposed else x
