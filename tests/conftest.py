"""Shared fixtures: tiny parameters and a project copy for end-to-end runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")


def base_parameters() -> dict:
    parameters = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("parameters_*.yml")):
        parameters.update(yaml.safe_load(path.read_text()))
    return parameters


@pytest.fixture
def tiny_parameters(tmp_path) -> dict:
    """The project's parameters, shrunk so each stage runs in seconds; checkpoints go to tmp_path."""
    parameters = base_parameters()
    parameters["pretraining"]["checkpoint"] = {"directory": str(tmp_path / "checkpoints"), "every_steps": 500}
    parameters["augmentation"].update(views_per_image=2, batch_size=256)
    parameters["pretraining"].update(epochs=1, batch_size=64, warmup_epochs=0)
    parameters["pretraining"]["small_cnn"] = {"widths": [8, 16]}
    parameters["evaluation"].update(knn_k=[5], label_fractions=[0.1])
    parameters["reporting"].update(embedding_plot_points=50)
    return parameters


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """A fresh copy of the project's conf/ and empty data/ folders, to run kedro in."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(PROJECT_ROOT / ".telemetry", root / ".telemetry")
    (root / "src").mkdir()  # kedro wants the folder; the package itself is installed
    for folder in (PROJECT_ROOT / "data").iterdir():
        (root / "data" / folder.name).mkdir(parents=True)
    return root
