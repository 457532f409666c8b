"""Each pipeline run alone with SequentialRunner on tiny data, through the real catalog types."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, Version
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset
from kedro_datasets.pandas import ParquetDataset
from kedro_datasets.text import TextDataset

from selfsup.data.on_the_fly import OnTheFlyPlan
from selfsup.datasets import EncoderCheckpointDataset, NpyDataset, OptionalJSONDataset, ViewCacheDataset
from selfsup.pipelines import (
    augmentation,
    evaluation,
    feature_extraction,
    finetune,
    ingestion,
    pretraining,
    reporting,
)


def catalog_for(tmp_path, parameters: dict) -> DataCatalog:
    datasets = {
        "images": NpyDataset(filepath=str(tmp_path / "images.npy")),
        "image_index": ParquetDataset(filepath=str(tmp_path / "image_index.parquet")),
        "data_summary": JSONDataset(filepath=str(tmp_path / "data_summary.json")),
        "view_cache": ViewCacheDataset(path=str(tmp_path / "view_cache")),
        "tokenizer": NpyDataset(filepath=str(tmp_path / "tokenizer.npy")),
        "encoder": EncoderCheckpointDataset(filepath=str(tmp_path / "encoder.pt")),
        "training_history": ParquetDataset(filepath=str(tmp_path / "training_history.parquet")),
        "training_summary": JSONDataset(filepath=str(tmp_path / "training_summary.json")),
        "features": ParquetDataset(filepath=str(tmp_path / "features.parquet")),
        "random_init_features": ParquetDataset(filepath=str(tmp_path / "random_init_features.parquet")),
        "finetune_metrics": JSONDataset(filepath=str(tmp_path / "finetune_metrics.json")),
        "detection_metrics": OptionalJSONDataset(filepath=str(tmp_path / "detection_metrics.json")),
        "metrics": JSONDataset(filepath=str(tmp_path / "metrics.json")),
        "metrics_history": JSONDataset(filepath=str(tmp_path / "metrics_history.json"), version=Version(None, None)),
        "test_predictions": ParquetDataset(filepath=str(tmp_path / "test_predictions.parquet")),
        "report": TextDataset(filepath=str(tmp_path / "report.html")),
        "report_figures": MatplotlibDataset(filepath=str(tmp_path / "figures")),
    }
    catalog = DataCatalog(datasets=datasets)
    catalog["parameters"] = parameters
    for section, values in parameters.items():
        catalog[f"params:{section}"] = values
    catalog["params:pretraining.seed"] = parameters["pretraining"]["seed"]
    catalog["environment"] = "base"
    return catalog


@pytest.fixture
def run_stage(tmp_path, tiny_parameters):
    catalog = catalog_for(tmp_path, tiny_parameters)

    def run(module):
        SequentialRunner().run(module.create_pipeline(), catalog)
        return catalog

    return run


def test_ingestion_writes_store_and_index(run_stage, tmp_path):
    catalog = run_stage(ingestion)
    images = catalog.load("images")
    index = catalog.load("image_index")
    assert isinstance(images, np.memmap) and images.dtype == np.uint8 and images.shape == (1797, 1, 8, 8)
    assert list(index.columns) == ["id", "split", "label", "class_name", "source"]
    assert index["id"].is_unique
    assert (index["split"] == "test").sum() == 360
    summary = json.loads((tmp_path / "data_summary.json").read_text())
    assert summary["classes"] == 10 and len(summary["data_hash"]) == 64


def test_each_stage_runs_alone_on_the_previous_outputs(run_stage, tmp_path):
    run_stage(ingestion)
    catalog = run_stage(augmentation)
    cache = catalog.load("view_cache")
    assert cache.views.shape == (1437, 2, 1, 8, 8)

    catalog = run_stage(pretraining)
    history = catalog.load("training_history")
    assert {"step", "epoch", "loss", "lr", "images_per_s", "embedding_std"} <= set(history.columns)
    assert len(history) == 1437 // 64
    checkpoint = catalog.load("encoder")
    assert checkpoint["config"]["backbone"] == "small_cnn"
    assert checkpoint["embedding_size"] == [8, 8]
    assert catalog.load("tokenizer").shape[0] == 0  # only beit fits one

    catalog = run_stage(feature_extraction)
    features = catalog.load("features")
    assert len(features) == 1797 and list(features.columns[:3]) == ["id", "split", "label"]
    assert features["f000"].dtype == np.float32 and features.shape[1] == 3 + 16

    run_stage(finetune)
    catalog = run_stage(evaluation)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    protocol = {"knn_k5", "linear", "linear_10pct", "kmeans_nmi", "kmeans_ari", "kmeans_acc"}
    assert set(metrics["raw_pixels"]) == protocol  # fine-tuning needs an encoder
    for row in ("ssl", "random_init"):
        assert set(metrics[row]) == protocol | {"finetune_10pct"}
        assert 0.0 <= metrics[row]["finetune_10pct"] <= 1.0
        assert metrics["finetune_runs"][row]["finetune_10pct"]["steps"] == 10
    assert metrics["run"]["method"] == "simclr"

    predictions = catalog.load("test_predictions")
    assert list(predictions.columns) == ["id", "label", "linear", "kmeans_cluster"] and len(predictions) == 360
    assert (predictions["linear"] == predictions["label"]).mean() == pytest.approx(metrics["ssl"]["linear"])
    assert catalog.load("metrics_history") == metrics

    run_stage(reporting)
    html = (tmp_path / "report.html").read_text()
    figures = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert figures == sorted(
        f"{name}.png"
        for name in (
            "training_curves",
            "collapse_monitor",
            "embedding_map",
            "retrieval_grid",
            "saliency_maps",
            "confusion_matrix",
            "cluster_montage",
            "augmentation_preview",
        )
    )
    assert 'id="metrics"' in html and html.count("data:image/png;base64,") == len(figures)


def test_on_the_fly_mode_builds_no_view_cache_and_trains_and_reports(tmp_path, tiny_parameters):
    tiny_parameters["augmentation"]["mode"] = "on_the_fly"
    catalog = catalog_for(tmp_path, tiny_parameters)

    def run_stage(module):
        SequentialRunner().run(module.create_pipeline(), catalog)
        return catalog

    run_stage(ingestion)
    catalog = run_stage(augmentation)
    plan = catalog.load("view_cache")
    assert isinstance(plan, OnTheFlyPlan) and len(plan.positions) == 1437
    assert not (tmp_path / "view_cache" / "views.npy").exists()

    catalog = run_stage(pretraining)
    assert len(catalog.load("training_history")) == 1437 // 64
    assert catalog.load("training_summary")["views"] == "on_the_fly"
    assert catalog.load("encoder")["config"]["image_size"] == [8, 8]
    for stage in (feature_extraction, finetune, evaluation, reporting):
        run_stage(stage)
    assert (tmp_path / "figures" / "augmentation_preview.png").exists()


def test_evaluation_alone_uses_saved_features(run_stage, tmp_path, tiny_parameters):
    for stage in (ingestion, augmentation, pretraining, feature_extraction, finetune):
        run_stage(stage)
    encoder_mtime = (tmp_path / "encoder.pt").stat().st_mtime_ns
    run_stage(evaluation)
    first = (tmp_path / "metrics.json").read_text()
    run_stage(evaluation)
    assert (tmp_path / "metrics.json").read_text() == first
    assert (tmp_path / "encoder.pt").stat().st_mtime_ns == encoder_mtime
    assert pd.read_parquet(tmp_path / "features.parquet").shape[0] == 1797


def test_beit_pretraining_fits_the_tokenizer_then_trains_on_it(tmp_path, tiny_parameters):
    tiny_parameters["pretraining"].update(method="beit", backbone="vit_tiny")
    tiny_parameters["pretraining"]["vit_tiny"] = {"patch_size": 2, "depth": 1}
    tiny_parameters["pretraining"]["beit"] = {"codebook_size": 16, "tokenizer_patches": 2000}
    catalog = catalog_for(tmp_path, tiny_parameters)
    for stage in (ingestion, augmentation, pretraining):
        SequentialRunner().run(stage.create_pipeline(), catalog)
    codebook = catalog.load("tokenizer")
    assert codebook.shape == (16, 1, 2, 2) and np.isfinite(codebook).all()
    history = catalog.load("training_history")
    assert len(history) == 1437 // 64 and "token_accuracy" in history.columns
    assert catalog.load("encoder")["config"]["backbone"] == "vit_tiny"
