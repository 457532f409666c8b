"""`kedro run` on texts, end to end: the text_wordnet environment's chain on a labelled folder and on a
CSV made here; the image default stays the image chain."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import run_kedro
from tests.test_default_run import kedro
from tests.text_data import labelled_text_folder, text_csv

pytest.importorskip("tokenizers", reason="the text extra: pip install -e '.[text]'")

TINY_TEXT = (
    "pretraining.epochs=2,pretraining.time_budget_s=null,pretraining.batch_size=16,"
    "pretraining.text_bag.dim=32,pretraining.text_transformer.dim=32,pretraining.text_transformer.depth=1,"
    "pretraining.wordpiece.vocab_size=200,"
    "evaluation.knn_k=[5,20],evaluation.label_fractions=[0.1],reporting.embedding_plot_points=50"
)


def outputs_of(root):
    folder = root / "data" / "text_wordnet"
    metrics = json.loads((folder / "08_reporting" / "metrics.json").read_text())
    return folder, metrics


def test_a_labelled_text_folder_runs_end_to_end(project_copy, tmp_path):
    texts = labelled_text_folder(tmp_path / "texts")
    (texts / "food" / "copy.txt").write_text((texts / "food" / "0040.txt").read_text())
    kedro(
        project_copy,
        "--env",
        "text_wordnet",
        "--params",
        f"ingestion.dataset=text_folder,ingestion.path={texts},{TINY_TEXT}",
    )
    folder, metrics = outputs_of(project_copy)
    assert list(metrics) == ["ssl", "tfidf", "random_init", "probe_convergence", "run"]
    assert set(metrics["ssl"]) == set(metrics["tfidf"]) == set(metrics["random_init"])
    assert metrics["tfidf"]["linear"] > 0.9  # three topics of distinct words
    run = metrics["run"]
    assert (run["method"], run["backbone"], run["views"]) == ("simcse", "text_bag", "tokens")
    assert (run["texts"], run["duplicates"], run["environment"]) == (120, 1, "text_wordnet")
    features = pd.read_parquet(folder / "07_model_output" / "features.parquet")
    assert len(features) == 120 and features.columns[3:].str.fullmatch(r"f\d{3}").all()
    assert json.loads((folder / "06_models" / "wordpiece.json").read_text())["model"]["type"] == "WordPiece"
    report = (folder / "08_reporting" / "report.html").read_text()
    assert 'id="nearest-sentences"' in report and "<th>TF-IDF</th>" in report and "raw pixels</th>" not in report
    assert not (project_copy / "data" / "08_reporting" / "metrics.json").exists()  # base's folder untouched


@pytest.mark.slow
def test_a_csv_runs_end_to_end_with_mlm_on_the_transformer(project_copy, tmp_path):
    path = text_csv(tmp_path / "texts.csv")
    params = f"ingestion.dataset=text_csv,ingestion.path={path},ingestion.text_column=body,ingestion.label_column=topic"
    transformer = "pretraining.method=mlm,pretraining.backbone=text_transformer"
    kedro(project_copy, "--env", "text_wordnet", "--params", f"{params},{transformer},{TINY_TEXT}")
    _, metrics = outputs_of(project_copy)
    run = metrics["run"]
    assert (run["method"], run["backbone"], run["dataset"]) == ("mlm", "text_transformer", "text_csv")
    assert metrics["ssl"]["knn_k5"] > metrics["random_init"]["knn_k5"] - 0.2  # trained, not broken


@pytest.mark.slow  # the check itself is tested fast in test_bad_inputs.py; this is the command line's answer
def test_a_text_environment_with_an_image_method_stops_before_any_node(project_copy, tmp_path):
    texts = labelled_text_folder(tmp_path / "texts")
    result = run_kedro(
        project_copy,
        "run",
        "--env",
        "text_wordnet",
        "--params",
        f"ingestion.dataset=text_folder,ingestion.path={texts},pretraining.method=simclr",
        check=False,
    )
    assert result.returncode == 2
    assert "Error: pretraining.method='simclr' does not train on texts" in result.stderr
    written = project_copy / "data" / "text_wordnet"  # the copy makes it when the checkout has one
    assert not any(path.is_file() for path in written.rglob("*"))
