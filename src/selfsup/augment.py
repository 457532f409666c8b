"""Batched view generation with per-sample random parameters.

Every operation draws its random parameters per image and applies them to a
whole batch at once on the batch's device: one ``grid_sample`` does random
resized crop, translation and flip together; jitter, grayscale, blur, solarize
and noise are elementwise or grouped convolutions. Inputs are uint8 (B, C, H, W),
outputs float (B, C, h, w) in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from selfsup.config import AugmentationParams

# Bump when the meaning of AugmentationParams changes, so old caches are rebuilt.
AUGMENT_VERSION = "2"

_LUMA = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=device)


def _bernoulli(n: int, p: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) < p


def boxes_to_theta(
    top: torch.Tensor, left: torch.Tensor, height: torch.Tensor, width: torch.Tensor, image_size: tuple[int, int]
) -> torch.Tensor:
    """(n, 2, 3) ``affine_grid`` matrices that resample the pixel boxes to the output grid.

    With ``align_corners=False`` output pixel j samples input x = left + width·(j + ½)/W_out − ½,
    which is what crop-then-bilinear-resize computes inside the box.
    """
    image_h, image_w = image_size
    theta = torch.zeros(len(top), 2, 3, device=top.device)
    theta[:, 0, 0] = width / image_w
    theta[:, 0, 2] = (2 * left + width) / image_w - 1
    theta[:, 1, 1] = height / image_h
    theta[:, 1, 2] = (2 * top + height) / image_h - 1
    return theta


def _crop_affine(
    n: int, image_size: tuple[int, int], p: AugmentationParams, gen: torch.Generator, device
) -> torch.Tensor:
    """(n, 2, 3) affine matrices for random resized crop + translation + horizontal flip."""
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
    theta = boxes_to_theta(top, left, height, width, image_size)
    flip = torch.where(_bernoulli(n, p.hflip_p, gen, device), -1.0, 1.0)
    theta[:, 0, 0] *= flip
    return theta


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(dim=1, keepdim=True)
    weights = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _color_jitter(x: torch.Tensor, p: AugmentationParams, gen: torch.Generator) -> torch.Tensor:
    n, device = x.shape[0], x.device
    apply = _bernoulli(n, p.color_jitter_p, gen, device).view(n, 1, 1, 1)
    brightness = _uniform(n, 1 - p.brightness, 1 + p.brightness, gen, device).view(n, 1, 1, 1)
    contrast = _uniform(n, 1 - p.contrast, 1 + p.contrast, gen, device).view(n, 1, 1, 1)
    saturation = _uniform(n, 1 - p.saturation, 1 + p.saturation, gen, device).view(n, 1, 1, 1)
    jittered = (x * brightness).clamp(0, 1)
    mean = _grayscale(jittered).mean(dim=(2, 3), keepdim=True)
    jittered = ((jittered - mean) * contrast + mean).clamp(0, 1)
    if x.shape[1] == 3:
        gray = _grayscale(jittered)
        jittered = ((jittered - gray) * saturation + gray).clamp(0, 1)
    return torch.where(apply, jittered, x)


def _gaussian_blur(x: torch.Tensor, p: AugmentationParams, gen: torch.Generator) -> torch.Tensor:
    n, c, h, w = x.shape
    device = x.device
    sigma = _uniform(n, *p.blur_sigma, gen, device)
    apply = _bernoulli(n, p.blur_p, gen, device)
    # A vanishing sigma turns the kernel into a delta: no blur for those samples.
    sigma = torch.where(apply, sigma, torch.full_like(sigma, 1e-6))
    radius = min(max(1, math.ceil(2 * p.blur_sigma[1])), (min(h, w) - 1) // 2)
    if radius < 1:
        return x
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=x.dtype)
    kernel = torch.exp(-(offsets[None, :] ** 2) / (2 * sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = kernel.repeat_interleave(c, dim=0)  # (n*c, k)
    flat = x.reshape(1, n * c, h, w)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(flat, kernel.view(n * c, 1, -1, 1), groups=n * c)
    return flat.view(n, c, h, w)


def augment_batch(
    images: torch.Tensor,
    params: AugmentationParams,
    generator: torch.Generator,
    output_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """One random view of each image in ``images`` (uint8 or [0, 1] float, B×C×H×W)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    n, c, h, w = x.shape
    out_h, out_w = output_size or (h, w)
    theta = _crop_affine(n, (h, w), params, generator, x.device)
    grid = F.affine_grid(theta, [n, c, out_h, out_w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = _color_jitter(x, params, generator)
    if c == 3 and params.grayscale_p > 0:
        gray = _grayscale(x).expand(-1, 3, -1, -1)
        x = torch.where(_bernoulli(n, params.grayscale_p, generator, x.device).view(n, 1, 1, 1), gray, x)
    if params.blur_p > 0:
        x = _gaussian_blur(x, params, generator)
    if params.solarize_p > 0:
        solarize = _bernoulli(n, params.solarize_p, generator, x.device).view(n, 1, 1, 1)
        x = torch.where(solarize & (x >= 0.5), 1.0 - x, x)
    if params.noise_std > 0:
        noise = torch.randn(x.shape, generator=generator, device=x.device) * params.noise_std
        x = x + noise
    return x.clamp(0.0, 1.0)


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
            to_uint8(augment_batch(batch, params, generator, params.output_size))
            for _ in range(params.views_per_image)
        ]
        yield slice(start, stop), torch.stack(views, dim=1).numpy()
