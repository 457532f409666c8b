"""benchmarks/gpu_cifar10.py runs end to end on CPU with --smoke, keeps a few images of each class
for it, and refuses a full run without CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from selfsup.data import ImageSet
from selfsup.data.sources import make_index
from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_cifar10.py"


def run_script(*args: str) -> subprocess.CompletedProcess:
    # This checkout's package, even where another checkout is the one installed.
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": path},
    )


def smoke_lines(*args: str) -> list[dict]:
    result = run_script("--smoke", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_smoke_run_on_synthetic_images_reports_both_methods(tmp_path):
    lines = smoke_lines("--data", str(tmp_path / "absent.tar.gz"))
    assert [line["method"] for line in lines] == ["simclr", "byol"]
    for line in lines:
        assert line["benchmark"] == "gpu_cifar10" and line["smoke"] is True
        assert line["data"].startswith("synthetic")
        assert 0.0 <= line["knn_accuracy"] <= 1.0
        assert line["knn_history"] == [[1, line["knn_accuracy"]]]
        assert line["device"] == "cpu" and line["images_per_s"] > 0
        assert line["anchor"] == {"simclr": 0.83, "byol": 0.84}


def test_smoke_keeps_the_first_images_of_each_class_of_each_split(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    from gpu_cifar10 import split_image_set

    labels = np.tile(np.arange(3), 4)  # 12 images per split, 4 of each of 3 classes
    splits = np.repeat(["test", "train"], len(labels))
    images = np.arange(2 * len(labels), dtype=np.uint8).repeat(3 * 32 * 32).reshape(-1, 3, 32, 32)
    ids = [f"{i:02d}" for i in range(len(images))]
    image_set = ImageSet(images, make_index(ids, splits, np.tile(labels, 2), "test"))
    kept = split_image_set(image_set, {"train": 2, "test": 1})
    np.testing.assert_array_equal(kept["train"].labels, [0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(kept["train"].images[:, 0, 0, 0], [12, 13, 14, 15, 16, 17])
    np.testing.assert_array_equal(kept["test"].labels, [0, 1, 2])
    np.testing.assert_array_equal(kept["test"].images[:, 0, 0, 0], [0, 1, 2])
    assert len(split_image_set(image_set, None)["train"].labels) == 12


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_full_run_without_cuda_stops_with_one_clear_error():
    result = run_script("--epochs", "1")
    assert result.returncode != 0
    assert result.stderr.strip() == "no CUDA device: run with --smoke on CPU"
