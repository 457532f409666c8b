"""`kedro run --env folder` on a user's folder, labelled and unlabelled, end to end; and two environments
run one after the other, each in its own data folder, recording what it ran with."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import run_kedro
from tests.pipelines.test_ingestion_sources import make_folder
from tests.test_default_run import kedro

# A list given on the command line (commas inside brackets) also overrides an 'auto' value.
TINY = "pretraining.epochs=2,pretraining.batch_size=16,augmentation.views_per_image=2,evaluation.knn_k=[5,20]"
# The default digits run, tiny, with list parameters from the command line.
TINY_DIGITS = (
    "pretraining.epochs=1,pretraining.batch_size=64,pretraining.warmup_epochs=0,pretraining.small_cnn.widths=[8,16],"
    "augmentation.views_per_image=2,augmentation.output_size=[6,6],evaluation.knn_k=[5],evaluation.label_fractions=[0.1],"
    "reporting.embedding_plot_points=200"
)


# The labelled run (60 s: it fine-tunes too) is slow; the default run's tests cover labelled
# protocol rows and the fine-tuning stage, this one covers the folder environment.
@pytest.mark.parametrize("labelled", [pytest.param(True, marks=pytest.mark.slow), False])
def test_folder_environment_runs_end_to_end(project_copy, tmp_path, labelled):
    folder = make_folder(tmp_path / "photos", labelled, per_class=40, classes=("a", "b", "c"))
    kedro(project_copy, "--env", "folder", "--params", f"ingestion.path={folder},{TINY}")
    outputs = project_copy / "data" / "folder"
    metrics = json.loads((outputs / "08_reporting" / "metrics.json").read_text())
    features = pd.read_parquet(outputs / "07_model_output" / "features.parquet")
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
            "finetune_10pct",  # the finetune stage, on the same label fractions
            "finetune_50pct",
        }
    else:
        assert set(metrics["ssl"]) == set(metrics["raw_pixels"]) == {"kmeans_silhouette"}
        assert features["label"].isna().all()
    assert (outputs / "08_reporting" / "report.html").stat().st_size > 10_000
    assert not (project_copy / "data" / "08_reporting" / "metrics.json").exists()  # base's folder untouched


@pytest.mark.slow  # two whole kedro runs: 90 s on 2 quiet cores (the folder runs above stay in the fast suite)
def test_two_environments_keep_their_outputs_and_record_their_parameters(project_copy, tmp_path):
    folder = make_folder(tmp_path / "photos", True, per_class=40, classes=("a", "b", "c"))
    kedro(project_copy, "--env", "folder", "--params", f"ingestion.path={folder},{TINY}")
    kedro(project_copy, "--params", TINY_DIGITS)
    data = project_copy / "data"
    runs = {"folder": data / "folder" / "08_reporting", "base": data / "08_reporting"}
    metrics = {name: json.loads((reporting / "metrics.json").read_text()) for name, reporting in runs.items()}
    assert {name: m["run"]["dataset"] for name, m in metrics.items()} == {"folder": "folder", "base": "digits"}
    assert {name: m["run"]["environment"] for name, m in metrics.items()} == {"folder": "folder", "base": "base"}
    for reporting in runs.values():
        assert (reporting / "report.html").stat().st_size > 10_000

    base, chosen = metrics["base"]["run"]["parameters"], metrics["folder"]["run"]["parameters"]
    assert base["augmentation"]["output_size"] == [6, 6] and base["pretraining"]["small_cnn"]["widths"] == [8, 16]
    assert base["pretraining"]["checkpoint"]["directory"] == "data/06_models/checkpoints"
    assert chosen["evaluation"]["knn_k"] == [5, 20] and chosen["ingestion"]["path"] == str(folder)
    assert chosen["ingestion"]["channels"] == 3 and chosen["evaluation"]["n_clusters"] == 3  # 'auto' resolved
    assert chosen["pretraining"]["checkpoint"]["directory"] == "data/folder/06_models/checkpoints"
    report = (runs["base"] / "report.html").read_text()
    assert "<th>augmentation.output_size</th><td>[6, 6]</td>" in report and "kedro run --env base" in report

    run_kedro(project_copy, "run", "--pipelines", "compare")
    table = pd.read_csv(runs["base"] / "runs_comparison.csv")
    assert list(table["environment"]) == ["base", "folder"]
    assert list(table["dataset"]) == ["digits", "folder"]
