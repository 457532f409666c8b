"""Pretraining: fit BEiT's tokenizer when it is needed, then train the configured SSL method on the
view cache, or on views generated per batch when the augmentation stage chose ``mode: on_the_fly``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selfsup.config import PretrainingParams, validate
from selfsup.data.on_the_fly import OnTheFlyPlan
from selfsup.data.view_cache import ViewCache
from selfsup.tokenizer import tokenizer_codebook
from selfsup.train import pretrain


def fit_tokenizer(view_cache: ViewCache | OnTheFlyPlan, images: np.ndarray, parameters: dict) -> np.ndarray:
    """BEiT's k-means codebook (K, C, p, p); for the other methods an empty one, at no cost."""
    params = validate(PretrainingParams, "pretraining", parameters)
    return tokenizer_codebook(view_cache.bind(images), params)


def pretrain_encoder(
    view_cache: ViewCache | OnTheFlyPlan, tokenizer: np.ndarray, images: np.ndarray, parameters: dict
) -> tuple[dict, pd.DataFrame, dict]:
    """Train here, or on ``pretraining.distributed`` processes launched from here; returns after all have ended.

    The checkpoint also records the stored images' size, at which feature extraction embeds
    (views may be smaller crops), so that ``selfsup.embed_images`` resizes new images alike.
    """
    params = validate(PretrainingParams, "pretraining", parameters)
    result = pretrain(view_cache.bind(images), params, codebook=tokenizer)
    return {**result.checkpoint, "embedding_size": list(images.shape[2:])}, result.history, result.summary
