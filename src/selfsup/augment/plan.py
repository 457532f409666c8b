"""Every random parameter of a batch of views, drawn per image in one fixed order.

Both ways of computing the views (``chunked`` and the fused CPU ``kernel``) read the
same ``Plan``, so they give the same views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from selfsup.augment.ops import crop_taps
from selfsup.config import AugmentationParams


@dataclass
class Plan:
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

    def take(self, rows) -> Plan:
        """The plan of samples ``rows`` (an index tensor or a slice)."""

        def pick(value):
            return tuple(v[rows] for v in value) if isinstance(value, tuple) else value[rows]

        return Plan(*(pick(value) for value in vars(self).values()))


def blur_radius(p: AugmentationParams, size: tuple[int, int]) -> int:
    """Taps each side of the blur kernel's centre: ``ceil(2 * sigma_max)``, at most what ``size`` reflects."""
    return min(max(1, math.ceil(2 * p.blur_sigma[1])), (min(size) - 1) // 2)


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=device)


def _bernoulli(n: int, p: float, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) < p


def draw_crop(n: int, image_size: tuple[int, int], p: AugmentationParams, gen, device):
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


def draw(n: int, channels: int, image_size, size, p: AugmentationParams, gen, device) -> Plan:
    """All parameters, drawn in a fixed order (the order of the operations)."""
    top, left, height, width, flip = draw_crop(n, image_size, p, gen, device)
    crop = crop_taps(top, left, height, width, image_size, size, flip)
    jitter = _bernoulli(n, p.color_jitter_p, gen, device)
    brightness = _uniform(n, 1 - p.brightness, 1 + p.brightness, gen, device)
    contrast = _uniform(n, 1 - p.contrast, 1 + p.contrast, gen, device)
    saturation = _uniform(n, 1 - p.saturation, 1 + p.saturation, gen, device)
    never = torch.zeros(n, dtype=torch.bool, device=device)
    gray = _bernoulli(n, p.grayscale_p, gen, device) if channels == 3 and p.grayscale_p > 0 else never
    sigma, blur = torch.ones(n, device=device), never
    if p.blur_p > 0:
        sigma = _uniform(n, *p.blur_sigma, gen, device)
        blur = _bernoulli(n, p.blur_p, gen, device) if blur_radius(p, size) >= 1 else never
    solar = _bernoulli(n, p.solarize_p, gen, device) if p.solarize_p > 0 else never
    return Plan(*crop, jitter, brightness, contrast, saturation, gray, blur, sigma, solar)
