"""`kedro run --env folder` on a user's folder, labelled and unlabelled, end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.pipelines.test_ingestion_sources import make_folder
from tests.test_default_run import kedro

# A list given on the command line (commas inside brackets) also overrides an 'auto' value.
TINY = "pretraining.epochs=2,pretraining.batch_size=16,augmentation.views_per_image=2,evaluation.knn_k=[5,20]"


@pytest.mark.parametrize("labelled", [True, False])
def test_folder_environment_runs_end_to_end(project_copy, tmp_path, labelled):
    folder = make_folder(tmp_path / "photos", labelled, per_class=40, classes=("a", "b", "c"))
    kedro(project_copy, "--env", "folder", "--params", f"ingestion.path={folder},{TINY}")
    reporting = project_copy / "data" / "08_reporting"
    metrics = json.loads((reporting / "metrics.json").read_text())
    features = pd.read_parquet(project_copy / "data" / "07_model_output" / "features.parquet")
    assert len(features) == 120
    if labelled:
        assert set(metrics["ssl"]) == {
            "knn_k5",
            "knn_k20",
            "linear",
            "linear_10pct",
            "linear_50pct",
            "kmeans_nmi",
            "kmeans_ari",
            "kmeans_acc",
        }
    else:
        assert set(metrics["ssl"]) == set(metrics["raw_pixels"]) == {"kmeans_silhouette"}
        assert features["label"].isna().all()
    assert (reporting / "report.html").stat().st_size > 10_000
