"""Batched view generation with per-sample random parameters.

All random parameters of a batch are drawn first, per image (``plan``). On the
CPU, ``kernel`` then computes each view in one compiled loop (``fused`` hands it
the plan); on other devices (CUDA) the batched tensor operations of ``ops`` do,
chunk by chunk (``chunked``). Both give the same views.

Inputs are uint8 (B, C, H, W) or [0, 1] float; outputs float32 (B, C, h, w).
The operations, in order: random resized crop with horizontal flip and
translation, colour jitter (brightness, contrast, saturation), grayscale,
Gaussian blur, solarize, Gaussian noise, a final clamp to [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from selfsup.augment.chunked import augment_chunked
from selfsup.augment.fused import augment_fused
from selfsup.augment.plan import draw
from selfsup.config import AugmentationParams

# Bump when the meaning of AugmentationParams changes, so old caches are rebuilt.
AUGMENT_VERSION = "4"


@torch.no_grad()
def augment_batch(
    images: torch.Tensor,
    params: AugmentationParams,
    generator: torch.Generator,
    output_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """One random view of each image in ``images`` (uint8 or [0, 1] float, B×C×H×W).

    On the CPU the fused kernel of ``selfsup.augment.kernel`` computes the views; on
    other devices the batched tensor operations of ``selfsup.augment.ops``. Same
    parameters, same views.
    """
    n, c, h, w = images.shape
    size = tuple(output_size or (h, w))
    gain = 1 / 255 if images.dtype == torch.uint8 else 1.0
    plan = draw(n, c, (h, w), size, params, generator, images.device)
    noise = None
    if params.noise_std > 0:
        noise = torch.randn((n, c, *size), generator=generator, device=images.device)
    augment = augment_fused if images.device.type == "cpu" else augment_chunked
    return augment(images, plan, params, noise, gain, size)


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
