"""Embed: features of the images under ``embed.path`` with the encoder in ``embed.checkpoint``."""

from __future__ import annotations

import logging

import pandas as pd

from selfsup.config import EmbedParams, ParameterError, validate
from selfsup.embedding import embed_images

logger = logging.getLogger(__name__)


def embed_folder(parameters: dict) -> pd.DataFrame:
    params = validate(EmbedParams, "embed", parameters)
    if not params.path:
        raise ParameterError(
            "embed.path is required: kedro run --pipelines embed --params embed.path=DIR,embed.checkpoint=FILE"
        )
    features = embed_images(
        params.path,
        params.checkpoint,
        image_size=params.image_size,
        batch_size=params.batch_size,
        device=params.device,
        workers=params.workers,
        on_error=params.on_error,
    )
    logger.info("Embedded %d images from %s with %s", len(features), params.path, params.checkpoint)
    return features
