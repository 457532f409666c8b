"""Augmentation: the cache of K augmented views of every training image."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selfsup.config import AugmentationParams, validate
from selfsup.data.view_cache import ViewCacheRequest


def request_view_cache(images: np.ndarray, image_index: pd.DataFrame, parameters: dict) -> ViewCacheRequest:
    """Ask for views of the train split only: test images never shape the encoder.

    The ``view_cache`` dataset reuses a cache whose content key matches and
    builds one otherwise.
    """
    params = validate(AugmentationParams, "augmentation", parameters)
    train_positions = np.flatnonzero((image_index["split"] == "train").to_numpy())
    return ViewCacheRequest(images, train_positions, params)
