"""The views with the fused CPU kernel: a ``Plan`` handed to ``kernel`` as its named groups."""

from __future__ import annotations

import numpy as np
import torch

from selfsup.augment.ops import gaussian_kernels, gray_weights
from selfsup.augment.plan import Plan, blur_radius
from selfsup.config import AugmentationParams


def augment_fused(images, plan: Plan, params: AugmentationParams, noise, gain, size) -> torch.Tensor:
    """The views with the fused CPU kernel."""
    from selfsup.augment import kernel  # numba: compiled on first use, then cached on disk

    n, c = images.shape[:2]
    source = images if images.dtype == torch.uint8 else images.float()
    radius = blur_radius(params, size) if bool(plan.blur.any()) else 0
    kernels = gaussian_kernels(plan.sigma, radius)
    noise_std = params.noise_std if noise is not None else 0.0
    noise = noise if noise is not None else torch.zeros(1, 1, 1, 1)
    batch = kernel.Batch(
        images=source.contiguous().numpy(),
        gain=np.float32(gain),
        crop=kernel.CropTaps(plan.rows[0].numpy(), plan.rows[1].numpy(), *_split_taps(*plan.columns)),
        colour=kernel.Colour(
            jitter=plan.jitter.numpy(),
            brightness=plan.brightness.numpy(),
            contrast=plan.contrast.numpy(),
            saturation=plan.saturation.numpy(),
            use_saturation=params.saturation > 0 and c == 3,
            gray=plan.gray.numpy(),
            luma=gray_weights(c, images.device).numpy(),
        ),
        blur=kernel.Blur(blurred=plan.blur.numpy(), kernels=kernels.numpy(), radii=_significant_radii(kernels)),
        finish=kernel.Finish(
            solarize=plan.solarize.numpy(), noise=noise.contiguous().numpy(), noise_std=np.float32(noise_std)
        ),
    )
    out = torch.empty(n, c, *size)
    kernel.run(batch, out.numpy())
    return out


def _split_taps(index: torch.Tensor, weight: torch.Tensor) -> tuple[np.ndarray, ...]:
    """(n, size, 2) taps as four contiguous (n, size) arrays: both indices (unsigned), both weights."""
    index, weight = index.to(torch.int32).numpy().view(np.uint32), weight.numpy()
    return tuple(np.ascontiguousarray(t[..., k]) for t in (index, weight) for k in (0, 1))


def _significant_radii(kernels: torch.Tensor) -> np.ndarray:
    """Per kernel, how many taps each side of the centre weigh 1e-8 or more: the others change
    no float32 pixel, and a small sigma needs fewer taps than the largest."""
    return ((kernels >= 1e-8).sum(dim=1) - 1).div(2, rounding_mode="floor").numpy()
