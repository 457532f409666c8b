"""The whole evaluation protocol on the three Fashion-MNIST feature sets: selfsup vs scikit-learn.

For the SSL features, the raw pixels and the random-init features of the last
`kedro run --env fashion_mnist`, runs kNN20/200, the probe on all labels, 1 % and
10 %, and k-means, once with selfsup.evaluate (what the evaluation pipeline runs)
and once with scikit-learn alone (benchmarks/_sklearn_protocol.py). Prints one JSON
line: both times, ``ratio`` (scikit-learn / selfsup; target >= 10), every metric of
both, ``max_difference`` over the shared metrics (target <= 0.002) and each probe's
convergence under both solvers. Run it with nothing else on the machine.

    python benchmarks/protocol.py          # features of the last fashion_mnist run (~15 minutes)
    python benchmarks/protocol.py --run    # first make them: a 60 s pretraining run (~5 minutes more)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from _environments import outputs
from _sklearn_protocol import protocol as sklearn_protocol

from selfsup.evaluate import protocol_predictions, score_predictions
from selfsup.features import features_frame, split_arrays

ROOT = Path(__file__).resolve().parents[1]
SHARED = ("knn_k20", "knn_k200", "linear", "linear_1pct", "linear_10pct", "kmeans_nmi")
MAKE_FEATURES = [
    sys.executable,
    "-m",
    "kedro",
    "run",
    "--env",
    "fashion_mnist",
    "--pipelines",
    "ingestion,augmentation,pretraining,feature_extraction",
    "--params",
    "pretraining.time_budget_s=60",
]


def feature_sets() -> dict[str, tuple[np.ndarray, ...]]:
    data = outputs("fashion_mnist")
    index = pd.read_parquet(data / "02_intermediate/image_index.parquet")
    if len(index) != 70_000:
        raise SystemExit(f"{data} holds {len(index)} images, not Fashion-MNIST's 70,000: run with --run first")
    images = np.load(data / "02_intermediate/images.npy", mmap_mode="r")
    pixels = np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0
    tables = {
        "ssl": pd.read_parquet(data / "07_model_output/features.parquet"),
        "raw_pixels": features_frame(index, pixels),
        "random_init": pd.read_parquet(data / "07_model_output/random_init_features.parquet"),
    }
    return {name: split_arrays(table) for name, table in tables.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", action="store_true", help="first make the features with a 60 s pretraining run")
    args = parser.parse_args()
    if args.run:
        subprocess.run(MAKE_FEATURES, cwd=ROOT, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}, check=True)
    result = {"benchmark": "protocol", "selfsup_s": 0.0, "sklearn_s": 0.0, "sets": {}}
    for name, (train_x, train_y, test_x, test_y) in feature_sets().items():
        started = time.perf_counter()
        predictions, convergence = protocol_predictions(train_x, train_y, test_x)
        ours = score_predictions(predictions, test_y)
        ours_s = time.perf_counter() - started
        reference, reference_convergence, seconds = sklearn_protocol(train_x, train_y, test_x, test_y, SHARED)
        result["selfsup_s"] += ours_s
        result["sklearn_s"] += sum(seconds.values())
        result["sets"][name] = {
            "dim": int(train_x.shape[1]),
            "selfsup": {k: ours[k] for k in SHARED},
            "sklearn": reference,
            "difference": {k: abs(ours[k] - reference[k]) for k in SHARED},
            "selfsup_s": ours_s,
            "sklearn_s": seconds,
            "selfsup_convergence": convergence,
            "sklearn_convergence": reference_convergence,
        }
    result["ratio"] = result["sklearn_s"] / result["selfsup_s"]
    result["max_difference"] = max(max(s["difference"].values()) for s in result["sets"].values())
    result["targets_met"] = result["ratio"] >= 10 and result["max_difference"] <= 0.002
    emit(result)


if __name__ == "__main__":
    main()
