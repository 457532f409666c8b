"""The whole default `kedro run`, as a user runs it, in a fresh copy of the project."""

from __future__ import annotations

import json
import subprocess
import sys

from selfsup.evaluate import METRIC_KEYS
from tests.test_run_outputs import PIPELINES


def kedro(root, *args) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args], cwd=root, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def protocol_rows(metrics: dict) -> dict:
    """Everything but the run facts and how each fine-tuning run went, which hold wall times."""
    return {key: value for key, value in metrics.items() if key not in ("run", "finetune_runs")}


def test_default_run_end_to_end_then_reuse_then_evaluation_alone(project_copy):
    kedro(project_copy)
    metrics_path = project_copy / "data" / "08_reporting" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    finetuned = {"finetune_1pct", "finetune_10pct"}  # the encoders' rows only
    for row in ("ssl", "raw_pixels", "random_init"):
        assert set(metrics[row]) == set(METRIC_KEYS) | (set() if row == "raw_pixels" else finetuned)
        assert all(0.0 <= value <= 1.0 for value in metrics[row].values())
    assert metrics["ssl"]["knn_k20"] >= metrics["random_init"]["knn_k20"] + 0.03
    assert metrics["run"]["method"] == "simclr" and metrics["run"]["dataset"] == "digits"
    report = (project_copy / "data" / "08_reporting" / "report.html").read_text()
    assert "raw pixels" in report and "random-init encoder" in report

    second = kedro(project_copy)
    assert "is up to date" in second.stderr and "Building view cache" not in second.stderr
    assert protocol_rows(json.loads(metrics_path.read_text())) == protocol_rows(metrics)

    encoder = project_copy / "data" / "06_models" / "encoder.pt"
    trained_at = encoder.stat().st_mtime_ns
    alone = kedro(project_copy, "--pipelines", "evaluation")
    assert "pretrain_encoder" not in alone.stderr
    assert encoder.stat().st_mtime_ns == trained_at
    assert protocol_rows(json.loads(metrics_path.read_text())) == protocol_rows(metrics)


def test_registry_lists_the_pipelines_and_the_default_leaves_out_the_on_demand_ones(project_copy):
    listed = subprocess.run(
        [sys.executable, "-m", "kedro", "registry", "list"], cwd=project_copy, capture_output=True, text=True
    )
    names = {line.strip("- ").strip() for line in listed.stdout.splitlines() if line.startswith("- ")}
    assert names == set(PIPELINES)


def test_default_pipeline_runs_every_stage_but_not_embed_or_compare():
    from kedro.framework.project import configure_project

    configure_project("selfsup")
    from selfsup.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    default = {node.name for node in pipelines["__default__"].nodes}
    assert {"ingest", "pretrain_encoder", "evaluate", "build_report"} <= default
    assert not {"embed_folder", "compare_runs"} & default
