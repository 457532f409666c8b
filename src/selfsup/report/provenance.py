"""Where a run's numbers came from: package versions, git commit, seed, data hash, times, device."""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "selfsup",
    "torch",
    "torchvision",
    "kedro",
    "kedro-datasets",
    "numpy",
    "scikit-learn",
    "pandas",
    "matplotlib",
    "umap-learn",
)
NOT_A_CHECKOUT = "not a git checkout"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(folder: str | Path = ".") -> str:
    """The commit checked out in ``folder`` (``+ uncommitted changes`` when dirty), or NOT_A_CHECKOUT."""
    try:
        commit = _git(folder, "rev-parse", "HEAD")
        dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return NOT_A_CHECKOUT
    return f"{commit} + uncommitted changes" if dirty else commit


def _git(folder: str | Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=folder, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def run_facts(
    training_summary: dict, data_summary: dict, parameters: dict, environment: str | None, folder: str | Path = "."
) -> dict:
    """The provenance table of the report, in reading order."""
    pretraining = parameters.get("pretraining", {})
    return {
        "environment": environment,
        "method": training_summary.get("method"),
        "backbone": training_summary.get("backbone"),
        "dataset": data_summary.get("dataset"),
        "images (train / test)": f"{data_summary.get('train')} / {data_summary.get('test')}",
        "image shape (C, H, W)": data_summary.get("shape"),
        "data hash (sha256 of the image store)": data_summary.get("data_hash"),
        "files skipped at ingestion": data_summary.get("skipped", 0),
        "seed (pretraining)": training_summary.get("seed", pretraining.get("seed")),
        "seed (augmentation / evaluation)": (
            f"{parameters.get('augmentation', {}).get('seed')} / {parameters.get('evaluation', {}).get('seed')}"
        ),
        "device": training_summary.get("device"),
        "steps (epochs)": f"{training_summary.get('steps')} ({training_summary.get('epochs')})",
        "stopped by": training_summary.get("stopped_by"),
        "pretraining wall time": _duration(training_summary.get("wall_time_s")),
        "training throughput": f"{training_summary.get('images_per_s', float('nan')):.0f} images/s",
        "final embedding std": training_summary.get("final_embedding_std"),
        "collapsed": training_summary.get("collapsed"),
        "git commit": git_commit(folder),
        "report written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, rest = divmod(float(seconds), 60)
    return f"{int(minutes)} min {rest:.1f} s" if minutes else f"{rest:.1f} s"
