"""Evaluation: the DESIGN.md protocol on SSL features and both baselines."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from selfsup.config import EvaluationParams, validate
from selfsup.evaluate import evaluate_features, evaluate_unlabelled
from selfsup.features import feature_matrix, features_frame, split_arrays

logger = logging.getLogger(__name__)


def _raw_pixel_features(images: np.ndarray, image_index: pd.DataFrame) -> pd.DataFrame:
    pixels = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    return features_frame(image_index, pixels)


def evaluate(
    features: pd.DataFrame,
    random_init_features: pd.DataFrame,
    images: np.ndarray,
    image_index: pd.DataFrame,
    training_summary: dict,
    data_summary: dict,
    parameters: dict,
) -> dict:
    params = validate(EvaluationParams, "evaluation", parameters)
    rows = {
        "ssl": features,
        "raw_pixels": _raw_pixel_features(images, image_index),
        "random_init": random_init_features,
    }
    labelled = image_index["label"].notna().to_numpy()
    if not labelled.any():
        logger.info("No labels: reporting label-free clustering structure only")
    metrics = {}
    for name, table in rows.items():
        if labelled.any():
            train_x, train_y, test_x, test_y = split_arrays(table[labelled])
            metrics[name] = evaluate_features(
                train_x, train_y, test_x, test_y,
                knn_k=params.knn_k, label_fractions=params.label_fractions,
                max_iter=params.linear_max_iter, seed=params.seed,
            )
        else:
            metrics[name] = evaluate_unlabelled(feature_matrix(table[table["split"] == "test"]), params.n_clusters)
        logger.info("%s: %s", name, {k: round(v, 4) for k, v in metrics[name].items()})
    metrics["run"] = {**training_summary, **data_summary}
    return metrics
