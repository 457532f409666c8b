"""``augmentation``: the random views each training image yields."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from selfsup.config.base import StrictParams, check_range


class AugmentationParams(StrictParams):
    """Per-sample random view generation; see ``selfsup.augment``.

    ``mode`` chooses where training views come from: ``cache`` stores K views per
    image once (``selfsup.data.view_cache``) and training draws from them;
    ``on_the_fly`` generates fresh views for every batch from the image store on
    the training device (``selfsup.data.on_the_fly``); nothing is stored, and
    ``views_per_image`` and ``batch_size`` are not used.
    """

    mode: Literal["cache", "on_the_fly"] = "cache"
    views_per_image: int = Field(16, ge=2)
    output_size: tuple[int, int] | None = None  # (H, W) of the views; None keeps the image size
    seed: int = 0
    batch_size: int = Field(512, ge=1)
    crop_scale: tuple[float, float] = (0.4, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.3333)
    max_translate: float = Field(0.1, ge=0, le=0.5)
    hflip_p: float = Field(0.0, ge=0, le=1)
    brightness: float = Field(0.4, ge=0, le=1)
    contrast: float = Field(0.4, ge=0, le=1)
    saturation: float = Field(0.0, ge=0, le=1)
    color_jitter_p: float = Field(0.8, ge=0, le=1)
    grayscale_p: float = Field(0.0, ge=0, le=1)
    blur_p: float = Field(0.3, ge=0, le=1)
    blur_sigma: tuple[float, float] = (0.1, 1.0)
    noise_std: float = Field(0.03, ge=0, le=1)
    solarize_p: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ranges(self) -> AugmentationParams:
        check_range("augmentation.crop_scale", self.crop_scale, 0.0, 1.0)
        check_range("augmentation.crop_ratio", self.crop_ratio, 0.0, float("inf"))
        check_range("augmentation.blur_sigma", self.blur_sigma, 0.0, float("inf"))
        return self
