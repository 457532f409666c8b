"""benchmarks/gpu_cifar10.py runs end to end on CPU with --smoke, reads the CIFAR-10 archive, and
refuses a full run without CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_cifar10.py"
ARCHIVE = PROJECT_ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"


def run_script(*args: str) -> subprocess.CompletedProcess:
    # This checkout's package, even where another checkout is the one installed.
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], check=False, capture_output=True, text=True, timeout=300,
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


@pytest.mark.skipif(not ARCHIVE.exists(), reason=f"no CIFAR-10 archive at {ARCHIVE}")
def test_the_archive_reader_keeps_the_first_images_of_each_class_of_each_split(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    from _cifar10_archive import read_cifar10_archive

    splits, classes = read_cifar10_archive(ARCHIVE, {"train": 3, "test": 2})
    assert classes == sorted(classes) and len(classes) == 10 and "airplane" in classes
    for split, per_class in (("train", 3), ("test", 2)):
        images, labels = splits[split].images, splits[split].labels
        assert images.shape == (10 * per_class, 3, 32, 32) and images.dtype == np.uint8
        np.testing.assert_array_equal(np.bincount(labels), [per_class] * 10)
        assert images.std() > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_full_run_without_cuda_stops_with_one_clear_error():
    result = run_script("--epochs", "1")
    assert result.returncode != 0
    assert result.stderr.strip() == "no CUDA device: run with --smoke on CPU"
