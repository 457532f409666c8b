"""Shared by the quality benchmarks: run an environment, then recompute its protocol independently.

The run's features.parquet is scored again with scikit-learn alone
(benchmarks/_sklearn_protocol.py, not selfsup.evaluate): kNN20, the linear probe,
the 1 % probe and k-means NMI must agree with metrics.json within 0.005.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _environments import outputs
from _sklearn_protocol import protocol as sklearn_protocol

ROOT = Path(__file__).resolve().parents[1]
AGREEMENT = 0.005


def recompute(features: pd.DataFrame, keys: tuple[str, ...]) -> dict[str, float]:
    """The SSL row's ``keys`` with scikit-learn alone (benchmarks/_sklearn_protocol.py)."""
    columns = [c for c in features.columns if c.startswith("f") and c[1:].isdigit()]
    train, test = features[features["split"] == "train"], features[features["split"] == "test"]
    x, y = train[columns].to_numpy("float32"), train["label"].to_numpy(int)
    xt, yt = test[columns].to_numpy("float32"), test["label"].to_numpy(int)
    metrics, _, _ = sklearn_protocol(x, y, xt, yt, keys=keys)
    return metrics


def run_and_check(benchmark: str, environment: str, kedro_args: list[str], targets: dict[str, float]) -> None:
    """``kedro run --env environment`` with ``kedro_args`` (unless --skip-run), then print one JSON line:
    every metric of the three feature sets, the targets, the independent recomputation, the wall times."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-run", action="store_true", help="only re-check the last run's outputs")
    args = parser.parse_args()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    run_wall = None
    if not args.skip_run:
        started = time.perf_counter()
        command = [sys.executable, "-m", "kedro", "run", "--env", environment, *kedro_args]
        subprocess.run(command, cwd=ROOT, env=env, check=True)
        run_wall = time.perf_counter() - started
    data = outputs(environment)
    metrics = json.loads((data / "08_reporting/metrics.json").read_text())
    features = pd.read_parquet(data / "07_model_output/features.parquet")
    independent = recompute(features, tuple(targets))
    disagreement = max(abs(independent[k] - metrics["ssl"][k]) for k in independent)
    result = {
        "benchmark": benchmark,
        "ssl": metrics["ssl"],
        "raw_pixels": metrics["raw_pixels"],
        "random_init": metrics["random_init"],
        "targets": targets,
        "met": {k: metrics["ssl"][k] >= v for k, v in targets.items()},
        "independent": independent,
        "max_disagreement": disagreement,
        "agrees": disagreement <= AGREEMENT,
        "rows": len(features),
        "run": metrics["run"],
        "kedro_run_wall_s": run_wall,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
    }
    print(json.dumps(result))
