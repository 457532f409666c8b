"""The report's library parts on small made-up inputs: provenance, collapse banner, comparison, tracking."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pandas as pd
import pytest

from selfsup.data.sources import make_index
from selfsup.hooks import tracked_metrics
from selfsup.pipelines.compare.nodes import saved_run
from selfsup.report import comparison_html, comparison_table, git_commit
from selfsup.report.figures import class_names, cluster_montage, collapse_monitor, confusion_matrix
from selfsup.report.html import flat_parameters, png_bytes, render_html

METRICS = {
    "ssl": {"knn_k20": 0.9, "linear": 0.95},
    "raw_pixels": {"knn_k20": 0.8, "linear": 0.85},
    "random_init": {"knn_k20": 0.7, "linear": 0.75},
    "run": {"method": "simclr", "dataset": "digits", "wall_time_s": 12.5, "collapsed": False, "device": "cpu"},
}


def test_git_commit_names_the_checkout_or_says_there_is_none(tmp_path):
    assert git_commit(tmp_path) == "not a git checkout"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.txt").write_text("a")
    subprocess.run(["git", "-C", str(tmp_path), "add", "a.txt"], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"], check=True
    )
    commit = git_commit(tmp_path)
    assert len(commit) == 40 and int(commit, 16) >= 0
    (tmp_path / "a.txt").write_text("b")
    assert git_commit(tmp_path) == f"{commit} + uncommitted changes"


def test_a_collapsed_run_is_flagged_in_the_report_and_its_monitor():
    # A method's own per-step projection spread (0.9) shares the column; the monitor read steps 24 and 49.
    history = pd.DataFrame({"step": np.arange(50), "embedding_std": [0.9] * 24 + [0.5] + [0.9] * 24 + [0.01]})
    figure = collapse_monitor(history, collapsed=True)
    assert figure.axes[0].get_title().startswith("COLLAPSED")
    assert list(figure.axes[0].lines[0].get_ydata()) == [0.5, 0.01]  # only the measured steps
    pngs = {"collapse_monitor": png_bytes(figure)}
    flagged = render_html("t", METRICS, pngs, {}, {}, {}, collapsed=True)
    healthy = render_html("t", METRICS, pngs, {}, {}, {}, collapsed=False)
    assert 'id="collapse-alert"' in flagged and 'id="collapse-alert"' not in healthy
    assert flagged.count("data:image/png;base64,") == 1


def test_comparison_puts_runs_in_time_order_with_every_row_of_the_protocol():
    later = {**METRICS, "ssl": {"knn_k20": 0.97, "linear": 0.96, "kmeans_nmi": 0.9}}
    table = comparison_table(
        {("base", "2026-01-02T00.00.00.000Z"): later, ("base", "2026-01-01T00.00.00.000Z"): METRICS}
    )
    assert list(table["run"]) == ["2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"]
    assert list(table["ssl.knn_k20"]) == [0.9, 0.97] and list(table["raw_pixels.linear"]) == [0.85, 0.85]
    assert math.isnan(table["ssl.kmeans_nmi"].iloc[0])  # a metric one run lacks
    page = comparison_html(table)
    assert "<td><b>0.970</b></td>" in page and page.count("<tr>") == 3


def test_comparison_groups_runs_by_environment_and_bolds_the_best_within_each():
    cifar = {**METRICS, "ssl": {"knn_k20": 0.6, "linear": 0.7}, "run": {**METRICS["run"], "dataset": "cifar10"}}
    table = comparison_table(
        {("cifar10", "2026-01-01T00.00.00.000Z"): cifar, ("base", "2026-01-02T00.00.00.000Z"): METRICS}
    )
    assert list(table["environment"]) == ["base", "cifar10"] and list(table["dataset"]) == ["digits", "cifar10"]
    page = comparison_html(table)
    assert "<td><b>0.900</b></td>" in page and "<td><b>0.600</b></td>" in page  # each environment's best
    assert "2 runs of 2 environments" in page


def test_saved_runs_are_named_by_their_environment_folder():
    assert saved_run("08_reporting/metrics_history.json/2026-01-01T00.00.00.000Z") == (
        "base",
        "2026-01-01T00.00.00.000Z",
    )
    assert saved_run("fashion_mnist/08_reporting/metrics_history.json/v1") == ("fashion_mnist", "v1")


def test_comparison_without_runs_says_what_to_do():
    with pytest.raises(ValueError, match="no saved runs"):
        comparison_table({})


def test_tracked_metrics_are_flat_finite_numbers():
    flat = tracked_metrics({**METRICS, "run": {**METRICS["run"], "final_embedding_std": float("nan")}})
    assert flat["ssl.knn_k20"] == 0.9 and flat["run.wall_time_s"] == 12.5
    assert "run.method" not in flat and "run.collapsed" not in flat and "run.final_embedding_std" not in flat


def test_class_names_label_the_confusion_matrix_and_the_cluster_montage():
    index = make_index(["a", "b", "c", "d"], ["test"] * 4, [0, 1, 1, None], "x", ["cat", "dog"])
    names = class_names(index)
    assert names == {0: "cat", 1: "dog"}
    predictions = pd.DataFrame(
        {"id": ["a", "b", "c"], "label": [0, 1, 1], "linear": [0, 1, 0], "kmeans_cluster": [0, 1, 1]}
    )
    matrix = confusion_matrix(predictions, names)
    assert [tick.get_text() for tick in matrix.axes[0].get_yticklabels()] == ["cat", "dog"]
    images = np.zeros((4, 1, 4, 4), dtype=np.uint8)
    montage = cluster_montage(images, index, predictions, per_cluster=2, names=names)
    row_labels = [axis.get_ylabel() for axis in montage.axes[::2]]
    assert row_labels == ["0 (1)\ncat 100%", "1 (2)\ndog 100%"]
    unnamed = confusion_matrix(predictions)
    assert [tick.get_text() for tick in unnamed.axes[0].get_yticklabels()] == ["0", "1"]


def test_the_report_lists_every_resolved_parameter_as_params_takes_it():
    parameters = {"augmentation": {"output_size": [24, 24], "mode": "cache"}, "embed": {"path": None, "device": "auto"}}
    assert flat_parameters(parameters) == {
        "augmentation.output_size": "[24, 24]",
        "augmentation.mode": "cache",
        "embed.path": "null",
        "embed.device": "auto",
    }
    page = render_html(
        "t", {**METRICS, "run": {**METRICS["run"], "environment": "cifar10"}}, {}, parameters, {}, {}, False
    )
    assert "<th>augmentation.output_size</th><td>[24, 24]</td>" in page and "kedro run --env cifar10" in page


def test_the_metrics_table_shows_fine_tuning_for_the_encoders_and_a_dash_for_raw_pixels():
    finetuned = {
        **METRICS,
        "ssl": {**METRICS["ssl"], "finetune_1pct": 0.91},
        "random_init": {**METRICS["random_init"], "finetune_1pct": 0.62},
    }
    page = render_html("t", finetuned, {}, {}, {}, {}, False)
    assert "<th>finetune_1pct</th>" in page and "raw pixels have no encoder" in page
    assert '<tr class="raw_pixels"><th>raw pixels</th><td>0.800</td><td>0.850</td><td>–</td></tr>' in page
    assert "<td>0.910</td>" in page and "<td>0.620</td>" in page
    assert "raw pixels have no encoder" not in render_html("t", METRICS, {}, {}, {}, {}, False)
