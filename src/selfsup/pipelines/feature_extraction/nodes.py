"""Feature extraction: embed every image with the trained and a random-init encoder."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selfsup.config import FeatureExtractionParams, validate
from selfsup.devices import resolve_device
from selfsup.encoder_checkpoint import encoder_from_checkpoint, random_encoder
from selfsup.features import embed_each, features_frame


def extract_features(
    encoder: dict, images: np.ndarray, image_index: pd.DataFrame, parameters: dict, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The SSL features and the random-init baseline's (the same architecture and input
    statistics, untrained), in one pass over the images."""
    params = validate(FeatureExtractionParams, "feature_extraction", parameters)
    encoders = [encoder_from_checkpoint(encoder), random_encoder(encoder["config"], seed)]
    trained, random_init = embed_each(
        encoders, images, params.batch_size, resolve_device(params.device), params.normalize
    )
    return features_frame(image_index, trained), features_frame(image_index, random_init)
