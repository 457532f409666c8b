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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _quality import run_and_check

TARGETS = {"linear": 0.925, "knn_k20": 0.900, "linear_1pct": 0.865, "kmeans_nmi": 0.680}

if __name__ == "__main__":
    run_and_check("quality_fashion_mnist", "fashion_mnist", [], TARGETS)
