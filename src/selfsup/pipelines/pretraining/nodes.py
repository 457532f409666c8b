"""Pretraining: train the configured SSL method on the view cache."""

from __future__ import annotations

import pandas as pd

from selfsup.config import PretrainingParams, validate
from selfsup.data.view_cache import ViewCache
from selfsup.train import pretrain


def pretrain_encoder(view_cache: ViewCache, parameters: dict) -> tuple[dict, pd.DataFrame, dict]:
    params = validate(PretrainingParams, "pretraining", parameters)
    result = pretrain(view_cache.views, params)
    return result.checkpoint, result.history, result.summary
