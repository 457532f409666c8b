"""Feature extraction: embed every image with the trained and a random-init encoder."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selfsup.config import FeatureExtractionParams, validate
from selfsup.features import embed, features_frame
from selfsup.train import encoder_from_checkpoint, random_encoder, resolve_device


def _embed_all(encoder, images: np.ndarray, image_index: pd.DataFrame, parameters: dict) -> pd.DataFrame:
    params = validate(FeatureExtractionParams, "feature_extraction", parameters)
    features = embed(encoder, images, params.batch_size, resolve_device(params.device), params.normalize)
    return features_frame(image_index, features)


def extract_features(encoder: dict, images: np.ndarray, image_index: pd.DataFrame, parameters: dict) -> pd.DataFrame:
    return _embed_all(encoder_from_checkpoint(encoder), images, image_index, parameters)


def extract_random_init_features(
    encoder: dict, images: np.ndarray, image_index: pd.DataFrame, parameters: dict, seed: int
) -> pd.DataFrame:
    """The random-init baseline: the same architecture and input statistics, untrained."""
    return _embed_all(random_encoder(encoder["config"], seed), images, image_index, parameters)
