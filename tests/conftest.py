"""Shared fixtures: tiny parameters and a project copy for end-to-end runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from kedro.config import OmegaConfigLoader

from selfsup.config import AugmentationParams, PretrainingParams
from selfsup.data.idx import read_idx_pair
from selfsup.data.view_cache import ensure_cache
from selfsup.encoder_checkpoint import encoder_from_checkpoint
from selfsup.features import embed
from selfsup.train import pretrain

PROJECT_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

# Small enough for a whole `kedro run` on digits in seconds, large enough for every report figure.
TINY_RUN_PARAMETERS = {
    "augmentation": {"views_per_image": 2, "batch_size": 256},
    "pretraining": {"epochs": 2, "batch_size": 64, "warmup_epochs": 0, "small_cnn": {"widths": [8, 16]}},
    "evaluation": {"knn_k": [5], "label_fractions": [0.1]},
    "finetune": {"steps": 10, "batch_size": 32},
    "reporting": {"embedding_plot_points": 200},
}


def base_parameters() -> dict:
    """conf/base's parameters as Kedro reads them (``${globals:...}`` resolved)."""
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    return loader["parameters"]


@pytest.fixture
def tiny_parameters(tmp_path) -> dict:
    """The project's parameters, shrunk so each stage runs in seconds; checkpoints go to tmp_path."""
    parameters = base_parameters()
    parameters["pretraining"]["checkpoint"] = {"directory": str(tmp_path / "checkpoints"), "every_steps": 500}
    parameters["augmentation"].update(views_per_image=2, batch_size=256)
    parameters["pretraining"].update(epochs=1, batch_size=64, warmup_epochs=0)
    parameters["pretraining"]["small_cnn"] = {"widths": [8, 16]}
    parameters["evaluation"].update(knn_k=[5], label_fractions=[0.1])
    parameters["finetune"].update(steps=10, batch_size=32)
    parameters["reporting"].update(embedding_plot_points=50)
    return parameters


def copy_project(root: Path) -> Path:
    """A fresh copy of the project's conf/, notebooks/ and empty data/ folders in ``root``."""
    root.mkdir(parents=True)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf")
    shutil.copytree(PROJECT_ROOT / "notebooks", root / "notebooks")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(PROJECT_ROOT / ".telemetry", root / ".telemetry")
    (root / "src").mkdir()  # kedro wants the folder; the package itself is installed
    for folder in (PROJECT_ROOT / "data").iterdir():
        (root / "data" / folder.name).mkdir(parents=True)
    return root


@pytest.fixture
def project_copy(tmp_path) -> Path:
    return copy_project(tmp_path / "project")


def run_kedro(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "kedro", *args], cwd=root, capture_output=True, text=True, timeout=900
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One tiny `kedro run` of the whole default pipeline (local env = tiny parameters), shared
    by the tests that look at its outputs with other tools. Tracked in MLflow when kedro-mlflow is installed."""
    root = copy_project(tmp_path_factory.mktemp("tiny") / "project")
    (root / "conf" / "local" / "parameters_tiny.yml").write_text(yaml.safe_dump(TINY_RUN_PARAMETERS))
    run_kedro(root, "run")
    return root


# Real features for the protocol's equivalence tests (the probe, k-means): Fashion-MNIST
# (`apt-get install -y dataset-fashion-mnist`; .ci/run installs it), one short training run shared.
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TRAIN_ROWS, TEST_ROWS = 3000, 2000


@pytest.fixture(scope="session")
def fashion():
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"needs Fashion-MNIST under {FASHION_MNIST}: apt-get install -y dataset-fashion-mnist")
    train = read_idx_pair(FASHION_MNIST / "train-images-idx3-ubyte.gz", FASHION_MNIST / "train-labels-idx1-ubyte.gz")
    test = read_idx_pair(FASHION_MNIST / "t10k-images-idx3-ubyte.gz", FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")
    return train[0][:TRAIN_ROWS], train[1][:TRAIN_ROWS], test[0][:TEST_ROWS], test[1][:TEST_ROWS]


@pytest.fixture(scope="session")
def feature_sets(fashion, tmp_path_factory):
    """Raw pixels, and the features of a one-epoch SimCLR run on the same images."""
    train_images, train_y, test_images, test_y = fashion
    augmentation = AugmentationParams(views_per_image=2, output_size=(20, 20), hflip_p=0.5, crop_scale=(0.3, 1.0))
    cache = ensure_cache(tmp_path_factory.mktemp("views"), train_images, np.arange(TRAIN_ROWS), augmentation)
    params = PretrainingParams(epochs=1, batch_size=128, warmup_epochs=0, small_cnn={"widths": [16, 32, 64]})
    encoder = encoder_from_checkpoint(pretrain(cache.bind(train_images), params).checkpoint)
    pixels = lambda images: images.reshape(len(images), -1).astype(np.float32) / 255
    return {
        "raw_pixels": (pixels(train_images), train_y, pixels(test_images), test_y),
        "ssl": (embed(encoder, train_images), train_y, embed(encoder, test_images), test_y),
    }
