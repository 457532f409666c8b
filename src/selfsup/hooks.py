"""Kedro hooks: validate every stage's parameters before any node runs; log results to MLflow."""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

from kedro.framework.hooks import hook_impl

from selfsup.adapt import has_auto, resolve_auto
from selfsup.config import SCHEMAS
from selfsup.preflight import validate_run


class ValidateParametersHook:
    """Before any node runs: ``auto`` parameters chosen from the images, then every stage validated."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        values = {section: catalog.load(f"params:{section}") for section in SCHEMAS if f"params:{section}" in catalog}
        if has_auto(values):
            resolved = resolve_auto(values)
            _replace_parameters(
                catalog, {section: resolved[section] for section in values if resolved[section] != values[section]}
            )
            values = resolved
        used = {section for section in values if f"params:{section}" in pipeline.inputs()}
        validate_run(values, used)


def _replace_parameters(catalog, changed: dict[str, dict]) -> None:
    """The catalog's ``parameters``, ``params:SECTION`` and changed ``params:SECTION.KEY`` set to ``changed``."""
    if "parameters" in catalog:
        catalog["parameters"] = {**catalog.load("parameters"), **changed}
    for section, section_values in changed.items():
        before = catalog.load(f"params:{section}")
        catalog[f"params:{section}"] = section_values
        for key, value in section_values.items():
            if value != before.get(key) and f"params:{section}.{key}" in catalog:
                catalog[f"params:{section}.{key}"] = value


def tracked_metrics(metrics: dict) -> dict[str, float]:
    """``metrics.json`` as flat MLflow metrics: ``ssl.knn_k20``, ``run.wall_time_s``, ... (numbers only)."""
    flat = {}
    for row, values in metrics.items():
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                flat[f"{row}.{key}"] = float(value)
    return flat


class TrackRunHook:
    """Logs the metrics, the report, its figures and the encoder to the active MLflow run.

    kedro-mlflow (the optional ``mlflow`` extra) starts one MLflow run per ``kedro run``
    and logs the parameters; its artifact datasets would have to replace catalog
    entries, which would make the extra mandatory, so the outputs are logged here as
    they are saved. Without MLflow, or with tracking disabled, there is no active run
    and this does nothing.
    """

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data, node) -> None:
        mlflow = sys.modules.get("mlflow")  # imported by kedro-mlflow when it is installed
        if mlflow is None or mlflow.active_run() is None:
            return
        if dataset_name == "metrics":
            mlflow.log_metrics(tracked_metrics(data))
            mlflow.log_dict(data, "metrics.json")
        elif dataset_name == "report":
            mlflow.log_text(data, "report.html")
        elif dataset_name == "report_figures":
            for name, figure in data.items():
                mlflow.log_figure(figure, f"figures/{name}")
        elif dataset_name == "encoder":
            _log_checkpoint(mlflow, data)


def _log_checkpoint(mlflow, checkpoint: dict) -> None:
    import torch

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "encoder.pt"
        torch.save(checkpoint, path)
        mlflow.log_artifact(str(path))
