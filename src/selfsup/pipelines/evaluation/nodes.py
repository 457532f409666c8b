"""Evaluation: the protocol (docs/protocol.md, "Evaluation protocol") on SSL features and both baselines."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from selfsup.config import EvaluationParams, validate
from selfsup.devices import resolve_device
from selfsup.evaluate import evaluate_unlabelled, protocol_predictions, score_predictions
from selfsup.features import feature_matrix, features_frame, split_arrays
from selfsup.kmeans import kmeans_labels

logger = logging.getLogger(__name__)


def _raw_pixel_features(images: np.ndarray, image_index: pd.DataFrame) -> pd.DataFrame:
    pixels = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    return features_frame(image_index, pixels)


def evaluate(
    features: pd.DataFrame,
    random_init_features: pd.DataFrame,
    images: np.ndarray,
    image_index: pd.DataFrame,
    parameters: dict,
) -> tuple[dict, pd.DataFrame]:
    """The protocol's metrics of each feature set and the SSL features' test-split predictions:
    ``id``, ``label``, ``linear`` (probe; null when unlabelled), ``kmeans_cluster``."""
    params = validate(EvaluationParams, "evaluation", parameters)
    rows = {
        "ssl": features,
        "raw_pixels": _raw_pixel_features(images, image_index),
        "random_init": random_init_features,
    }
    return evaluate_feature_sets(rows, image_index, params)


def evaluate_feature_sets(
    rows: dict[str, pd.DataFrame], index: pd.DataFrame, params: EvaluationParams
) -> tuple[dict, pd.DataFrame]:
    """The protocol on each features table of ``rows`` (``ssl`` among them), and the SSL features'
    test-split predictions."""
    labelled = index["label"].notna().to_numpy()
    if not labelled.any():
        logger.info("No labels: reporting label-free clustering structure only")
    metrics, ssl_predictions = {}, None
    for name, table in tqdm(rows.items(), desc="evaluating", unit="feature set", disable=None):
        if labelled.any():
            train_x, train_y, test_x, test_y = split_arrays(table[labelled])
            predictions, convergence = protocol_predictions(
                train_x,
                train_y,
                test_x,
                knn_k=params.knn_k,
                label_fractions=params.label_fractions,
                max_iter=params.linear_max_iter,
                seed=params.seed,
                device=resolve_device(params.device),
            )
            metrics[name] = score_predictions(predictions, test_y)
            metrics.setdefault("probe_convergence", {})[name] = convergence
            if name == "ssl":
                ssl_predictions = _prediction_table(table[labelled], predictions["linear"], predictions["kmeans"])
        else:
            test_x = feature_matrix(table[table["split"] == "test"])
            metrics[name] = evaluate_unlabelled(test_x, params.n_clusters)
            if name == "ssl":
                ssl_predictions = _prediction_table(table, None, kmeans_labels(test_x, params.n_clusters))
        logger.info("%s: %s", name, {k: round(v, 4) for k, v in metrics[name].items()})
    return metrics, ssl_predictions


def _prediction_table(table: pd.DataFrame, linear: np.ndarray | None, clusters: np.ndarray) -> pd.DataFrame:
    test = table[table["split"] == "test"]
    return pd.DataFrame(
        {
            "id": test["id"].array,
            "label": test["label"].astype("Int64").array,
            "linear": pd.array(linear if linear is not None else [None] * len(test), dtype="Int64"),
            "kmeans_cluster": clusters.astype(np.int64),
        }
    )


def record_run(
    protocol_metrics: dict,
    finetune_metrics: dict,
    detection_metrics: dict,
    training_summary: dict,
    data_summary: dict,
    parameters: dict,
    environment: str,
) -> tuple[dict, dict]:
    """``metrics.json`` (also returned for the versioned ``metrics_history``): the protocol's rows with
    the fine-tuning accuracies joined in (``ssl`` and ``random_init``; ``finetune_runs`` says how each
    run went), the ``detection`` section when the detection pipeline has run on this run's encoder
    (its ``encoder_training`` is this run's training summary), and the ``run`` section: the training and
    data summaries, the environment and every parameter as the run resolved it (the environment's files,
    ``--params`` and ``auto`` values applied)."""
    rows = dict(protocol_metrics)
    for name, values in finetune_metrics.items():
        rows[name] = {**rows.get(name, {}), **values}
    if detection_metrics and detection_metrics["encoder_training"] == training_summary:
        rows["detection"] = {key: value for key, value in detection_metrics.items() if key != "encoder_training"}
    elif detection_metrics:
        logger.info("detection_metrics.json is of another run's encoder: metrics.json leaves it out")
    run = {**training_summary, **data_summary, "environment": environment, "parameters": parameters}
    metrics = {**rows, "run": run}
    return metrics, metrics
