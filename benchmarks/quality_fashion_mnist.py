"""Quality benchmark: `kedro run --env fashion_mnist`, then the protocol recomputed independently.

Runs the environment (unless --skip-run), reads features.parquet and recomputes
kNN20, the linear probe, the 1 % probe and k-means NMI with scikit-learn
directly (benchmarks/_sklearn_protocol.py, not selfsup.evaluate), checks that they agree with
metrics.json within 0.005, and prints one JSON line with the SSL numbers, both
baselines, the targets, the wall times and the machine.

    python benchmarks/quality_fashion_mnist.py            # ~25 minutes on 2 cores
    python benchmarks/quality_fashion_mnist.py --skip-run # re-check the last run
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
from _sklearn_protocol import protocol as sklearn_protocol

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"linear": 0.925, "knn_k20": 0.900, "linear_1pct": 0.865, "kmeans_nmi": 0.680}


def recompute(features: pd.DataFrame) -> dict[str, float]:
    """The SSL row's targeted metrics with scikit-learn alone (benchmarks/_sklearn_protocol.py)."""
    columns = [c for c in features.columns if c.startswith("f") and c[1:].isdigit()]
    train, test = features[features["split"] == "train"], features[features["split"] == "test"]
    x, y = train[columns].to_numpy("float32"), train["label"].to_numpy(int)
    xt, yt = test[columns].to_numpy("float32"), test["label"].to_numpy(int)
    metrics, _, _ = sklearn_protocol(x, y, xt, yt, keys=tuple(TARGETS))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-run", action="store_true", help="only re-check the last run's outputs")
    args = parser.parse_args()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    run_wall = None
    if not args.skip_run:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "fashion_mnist"], cwd=ROOT, env=env, check=True)
        run_wall = time.perf_counter() - started
    metrics = json.loads((ROOT / "data/08_reporting/metrics.json").read_text())
    features = pd.read_parquet(ROOT / "data/07_model_output/features.parquet")
    independent = recompute(features)
    disagreement = max(abs(independent[k] - metrics["ssl"][k]) for k in independent)
    result = {
        "benchmark": "quality_fashion_mnist",
        "ssl": metrics["ssl"],
        "raw_pixels": metrics["raw_pixels"],
        "random_init": metrics["random_init"],
        "targets": TARGETS,
        "met": {k: metrics["ssl"][k] >= v for k, v in TARGETS.items()},
        "independent": independent,
        "max_disagreement": disagreement,
        "agrees": disagreement <= 0.005,
        "rows": len(features),
        "run": metrics["run"],
        "kedro_run_wall_s": run_wall,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
