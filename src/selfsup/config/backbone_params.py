"""Each backbone's own hyperparameters, under its name in ``pretraining`` (``pretraining.small_cnn``, ...)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from selfsup.config.base import StrictParams


class SmallCNNParams(StrictParams):
    widths: tuple[int, ...] = Field((32, 64, 128, 256), min_length=1)
    output_grid: int = Field(1, ge=1)


class ResNetParams(StrictParams):
    small_image_stem: bool = True  # 3×3 stride-1 first conv and no max-pool, for images of ~32 px


class ViTParams(StrictParams):
    patch_size: int = Field(4, ge=1)
    depth: int = Field(12, ge=1)
    pool: Literal["mean", "cls"] = "mean"  # features: mean of the patch tokens, or the cls token
