"""Text nodes: the image stages' contracts, fed from ``texts``, ``text_index`` and the ``wordpiece`` tokenizer.

Each node validates its section and calls the library (``selfsup.text``); the evaluation's
protocol and ``record_run`` are the images' own.
"""

from __future__ import annotations

import hashlib
import logging

import pandas as pd
from matplotlib.figure import Figure

from selfsup.config import (
    EvaluationParams,
    FeatureExtractionParams,
    IngestionParams,
    PretrainingParams,
    ReportingParams,
    validate,
)
from selfsup.devices import resolve_device
from selfsup.features import features_frame
from selfsup.pipelines.evaluation.nodes import evaluate_feature_sets, record_run
from selfsup.text.encoder import random_text_encoder, text_encoder_from_checkpoint
from selfsup.text.features import embed_token_ids
from selfsup.text.readers import load_text_set
from selfsup.text.report import build_text_report
from selfsup.text.tfidf import tfidf_row, tfidf_unlabelled_row
from selfsup.text.training import pretrain_texts
from selfsup.text.wordpiece import encode_texts, fit_wordpiece, wordpiece_from_json

logger = logging.getLogger(__name__)


def ingest_texts(parameters: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    params = validate(IngestionParams, "ingestion", parameters)
    text_set = load_text_set(params)
    texts, index = text_set.texts, text_set.index
    summary = {
        "dataset": params.dataset,
        "texts": len(texts),
        "train": int((index["split"] == "train").sum()),
        "test": int((index["split"] == "test").sum()),
        "labelled": int(index["label"].notna().sum()),
        "classes": int(index["label"].nunique()),
        "duplicates": text_set.duplicates,
        "skipped": len(text_set.skipped),
        "skipped_files": [f"{where}: {reason}" for where, reason in text_set.skipped],
        "data_hash": hashlib.sha256("\x00".join(texts["text"]).encode()).hexdigest(),
    }
    logger.info("Ingested %(texts)d texts (%(train)d train, %(test)d test, %(duplicates)d duplicates dropped)", summary)
    return texts, index, summary


def _train_texts(texts: pd.DataFrame, text_index: pd.DataFrame) -> pd.Series:
    return texts["text"][(text_index["split"] == "train").to_numpy()]


def fit_text_tokenizer(texts: pd.DataFrame, text_index: pd.DataFrame, parameters: dict) -> str:
    """The WordPiece tokenizer of the training texts, as its JSON (the ``wordpiece`` entry)."""
    params = validate(PretrainingParams, "pretraining", parameters)
    tokenizer = fit_wordpiece(_train_texts(texts, text_index), params.wordpiece)
    logger.info("WordPiece: %d tokens learned from the training texts", tokenizer.get_vocab_size())
    return tokenizer.to_str()


def pretrain_text_encoder(
    texts: pd.DataFrame, text_index: pd.DataFrame, wordpiece: str, parameters: dict
) -> tuple[dict, pd.DataFrame, dict]:
    params = validate(PretrainingParams, "pretraining", parameters)
    tokenizer = wordpiece_from_json(wordpiece)
    ids = encode_texts(tokenizer, _train_texts(texts, text_index))
    result = pretrain_texts(ids, tokenizer.get_vocab_size(), params)
    return result.checkpoint, result.history, result.summary


def extract_text_features(
    encoder: dict, texts: pd.DataFrame, text_index: pd.DataFrame, wordpiece: str, parameters: dict, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The SSL features and the random-init baseline's, for every text (train and test), in one pass."""
    params = validate(FeatureExtractionParams, "feature_extraction", parameters)
    ids = encode_texts(wordpiece_from_json(wordpiece), texts["text"])
    encoders = [text_encoder_from_checkpoint(encoder), random_text_encoder(encoder["config"], seed)]
    trained, random_init = embed_token_ids(
        encoders, ids, params.batch_size, resolve_device(params.device), params.normalize
    )
    return features_frame(text_index, trained), features_frame(text_index, random_init)


def evaluate_texts(
    features: pd.DataFrame,
    random_init_features: pd.DataFrame,
    texts: pd.DataFrame,
    text_index: pd.DataFrame,
    parameters: dict,
) -> tuple[dict, pd.DataFrame]:
    """The protocol on the SSL features, TF-IDF (``selfsup.text.tfidf``) and the random-init encoder."""
    params = validate(EvaluationParams, "evaluation", parameters)
    metrics, predictions = evaluate_feature_sets(
        {"ssl": features, "random_init": random_init_features}, text_index, params
    )
    split = text_index["split"].to_numpy()
    labelled = text_index["label"].notna().to_numpy()
    train, test = (split == "train") & labelled, (split == "test") & labelled
    if labelled.any():
        labels = text_index["label"].to_numpy("int64", na_value=-1)
        tfidf, convergence = tfidf_row(texts["text"][train], labels[train], texts["text"][test], labels[test], params)
        metrics["probe_convergence"]["tfidf"] = convergence
    else:
        tfidf = tfidf_unlabelled_row(texts["text"][split == "train"], texts["text"][split == "test"], params)
    logger.info("tfidf: %s", {k: round(v, 4) for k, v in tfidf.items()})
    ordered = {"ssl": metrics.pop("ssl"), "tfidf": tfidf, "random_init": metrics.pop("random_init")}
    return {**ordered, **metrics}, predictions


def record_text_run(
    protocol_metrics: dict, training_summary: dict, data_summary: dict, parameters: dict, environment: str
) -> tuple[dict, dict]:
    """``metrics.json`` as for images; texts have no fine-tuning or detection stage, so neither joins it."""
    return record_run(protocol_metrics, {}, {}, training_summary, data_summary, parameters, environment)


def report_texts(
    metrics: dict,
    training_history: pd.DataFrame,
    training_summary: dict,
    data_summary: dict,
    features: pd.DataFrame,
    test_predictions: pd.DataFrame,
    texts: pd.DataFrame,
    text_index: pd.DataFrame,
    parameters: dict,
) -> tuple[str, dict[str, Figure]]:
    params = validate(ReportingParams, "reporting", parameters.get("reporting"))
    html, figures = build_text_report(
        metrics=metrics,
        training_history=training_history,
        training_summary=training_summary,
        data_summary=data_summary,
        features=features,
        test_predictions=test_predictions,
        texts=texts,
        text_index=text_index,
        parameters=parameters,
        embedding_plot_points=params.embedding_plot_points,
        seed=params.seed,
    )
    return html, {f"{name}.png": figure for name, figure in figures.items()}
