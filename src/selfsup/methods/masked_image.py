"""What the masked-image-modelling methods (MAE, BEiT) share: the ViT check and the masks.

A mask is bool (B, N) over the patch grid in row-major order, True where a
patch is hidden. Every sample hides exactly ``masked_count(N, ratio)`` patches,
at least one and never all, so the loss scale is the same in every batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from selfsup.errors import ParameterError
from selfsup.models import Encoder
from selfsup.models.vit import ViT

# BEiT's smallest block is 16 of the 196 patches of a 224-px image; keep that fraction.
MIN_BLOCK_FRACTION = 16 / 196
BLOCK_ASPECT = (0.3, 1 / 0.3)
BLOCK_ATTEMPTS = 100


def vit_required(method: str, backbone: str) -> ParameterError:
    return ParameterError(
        f"pretraining.method={method!r} needs a ViT backbone: set pretraining.backbone to "
        f"vit_tiny or vit_small (got {backbone!r})"
    )


def vit_backbone(encoder: Encoder, method: str) -> ViT:
    if not isinstance(encoder.backbone, ViT):
        raise vit_required(method, encoder.config["backbone"])
    return encoder.backbone


def masked_count(n_patches: int, ratio: float) -> int:
    return min(n_patches - 1, max(1, round(n_patches * ratio)))


def random_mask(batch: int, n_patches: int, ratio: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """MAE's masking: a uniformly random subset of patches per sample."""
    order = torch.rand(batch, n_patches, device=device).argsort(dim=1)
    return order.argsort(dim=1) < masked_count(n_patches, ratio)


def block_mask(batch: int, grid: tuple[int, int], ratio: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """BEiT's blockwise masking: random rectangles until the masked count is reached.

    Rectangles have an area between the minimum block and the patches still to
    mask and an aspect ratio in [0.3, 1/0.3]; a rectangle that would overshoot
    is redrawn. Unlike BEiT, any shortfall left after the attempts is filled
    with random patches, so every sample hides the same number.
    """
    rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
    masks = np.stack([_block_mask_one(grid, ratio, rng) for _ in range(batch)])
    return torch.from_numpy(masks).to(device)


def _block_mask_one(grid: tuple[int, int], ratio: float, rng: np.random.Generator) -> np.ndarray:
    rows, cols = grid
    target = masked_count(rows * cols, ratio)
    min_block = max(1, round(rows * cols * MIN_BLOCK_FRACTION))
    log_aspect = (math.log(BLOCK_ASPECT[0]), math.log(BLOCK_ASPECT[1]))
    mask = np.zeros(grid, dtype=bool)
    count = 0
    for _ in range(BLOCK_ATTEMPTS):
        remaining = target - count
        if remaining == 0:
            break
        area = rng.uniform(min_block, max(min_block, remaining))
        aspect = math.exp(rng.uniform(*log_aspect))
        height = min(rows, max(1, round(math.sqrt(area * aspect))))
        width = min(cols, max(1, round(math.sqrt(area / aspect))))
        top = rng.integers(0, rows - height + 1)
        left = rng.integers(0, cols - width + 1)
        block = mask[top : top + height, left : left + width]
        added = block.size - int(block.sum())
        if 0 < added <= remaining:
            block[...] = True
            count += added
    flat = mask.reshape(-1)
    if count < target:
        flat[rng.choice(np.flatnonzero(~flat), target - count, replace=False)] = True
    return flat
