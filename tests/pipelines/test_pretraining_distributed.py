"""The pretraining node launching its own worker processes (2 gloo ranks on CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from kedro.runner import SequentialRunner

from selfsup.distributed import RankFailedError
from selfsup.pipelines import augmentation, ingestion, pretraining
from tests.conftest import TINY_RUN_PARAMETERS, run_kedro
from tests.pipelines.test_stages import catalog_for

OUTPUTS = ("encoder.pt", "training_history.parquet", "training_summary.json")


@pytest.fixture
def view_cache(tmp_path, tiny_parameters):
    catalog = catalog_for(tmp_path, tiny_parameters)
    for stage in (ingestion, augmentation):
        SequentialRunner().run(stage.create_pipeline(), catalog)
    return tiny_parameters


@pytest.mark.slow  # ~25 s: two workers import the package; the kedro run below covers the same path end to end
def test_node_trains_on_two_processes_and_saves_rank_zeros_result(tmp_path, view_cache):
    view_cache["pretraining"]["distributed"] = {"nproc_per_node": 2}
    catalog = catalog_for(tmp_path, view_cache)
    SequentialRunner().run(pretraining.create_pipeline(), catalog)
    summary = json.loads((tmp_path / "training_summary.json").read_text())
    assert summary["processes"] == 2 and summary["batch_size"] == 64 and summary["steps"] == 1437 // 64
    assert len(catalog.load("training_history")) == 1437 // 64
    assert not list((tmp_path / "checkpoints").glob("*/step-*.pt")), "a finished run removes its checkpoints"


def test_a_failing_rank_fails_the_node_with_its_message_and_saves_nothing(tmp_path, view_cache):
    view_cache["pretraining"].update(batch_size=4096, distributed={"nproc_per_node": 2})
    catalog = catalog_for(tmp_path, view_cache)
    with pytest.raises(RankFailedError, match=r"rank \d failed: ValueError: pretraining.batch_size=4096 is larger"):
        SequentialRunner().run(pretraining.create_pipeline(), catalog)
    assert not [name for name in OUTPUTS if (tmp_path / name).exists()]


@pytest.mark.slow
def test_kedro_run_on_two_processes_passes_the_default_bar(project_copy):
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--params", "pretraining.distributed.nproc_per_node=2"],
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((project_copy / "data" / "08_reporting" / "metrics.json").read_text())
    assert metrics["ssl"]["knn_k20"] >= metrics["random_init"]["knn_k20"] + 0.03  # test_default_run's bar
    summary = json.loads((project_copy / "data" / "06_models" / "training_summary.json").read_text())
    assert summary["processes"] == 2 and summary["stopped_by"] == "epochs"


@pytest.mark.slow  # ~2 min: the whole default pipeline, pretraining on two workers
def test_kedro_run_of_byol_on_two_processes_ends_with_the_metrics(project_copy):
    """The bar for the crash of momentum methods on several CPU processes (a momentum copy's batch norm
    got fresh trainable parameters that DDP never saw a gradient for, and the second step stopped)."""
    (project_copy / "conf" / "local" / "parameters_tiny.yml").write_text(yaml.safe_dump(TINY_RUN_PARAMETERS))
    run_kedro(project_copy, "run", "--params", "pretraining.method=byol,pretraining.distributed.nproc_per_node=2")
    metrics = json.loads((project_copy / "data" / "08_reporting" / "metrics.json").read_text())
    run = metrics["run"]  # the training summary among others
    assert run["method"] == "byol" and run["processes"] == 2 and run["stopped_by"] == "epochs"
    assert run["steps"] == TINY_RUN_PARAMETERS["pretraining"]["epochs"] * (1437 // 64)
