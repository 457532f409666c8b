"""``feature_extraction`` and ``embed``: features of images from a trained encoder."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from selfsup.config.base import StrictParams


class FeatureExtractionParams(StrictParams):
    batch_size: int = Field(512, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    normalize: bool = True  # unit-length feature vectors (SSL and random-init alike; raw pixels stay raw)


class EmbedParams(StrictParams):
    """`kedro run --pipelines embed --params embed.path=DIR,embed.checkpoint=FILE`."""

    path: str | None = None  # required by the embed pipeline: a folder of images or one image file
    checkpoint: str = "data/06_models/encoder.pt"
    image_size: tuple[int, int] | None = None  # None: the size the encoder was trained on
    batch_size: int = Field(512, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = Field(2, ge=1)
    on_error: Literal["skip", "fail"] = "fail"
