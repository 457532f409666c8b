"""Quality benchmark: `kedro run --env cifar10` on the CIFAR-10 JPEG copy, then the protocol recomputed.

Runs the environment on ../shared/datasets/cifar10-jpeg.tar.gz (unless --skip-run;
the official split, JPEG-decoded pixels: close to, not identical with, the official
arrays), reads features.parquet and recomputes kNN20, the linear probe, the 1 % probe
and k-means NMI with scikit-learn directly (benchmarks/_sklearn_protocol.py), checks
that they agree with metrics.json within 0.005, and prints one JSON line with every
metric of the SSL, raw-pixel and random-init rows, the targets, the wall times and the machine.

    python benchmarks/quality_cifar10.py            # ~25 minutes on 2 cores
    python benchmarks/quality_cifar10.py --skip-run # re-check the last run
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _quality import ROOT, run_and_check

ARCHIVE = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
TARGETS = {"knn_k20": 0.640, "linear": 0.700, "linear_1pct": 0.530, "kmeans_nmi": 0.240}

if __name__ == "__main__":
    run_and_check("quality_cifar10", "cifar10", ["--params", f"ingestion.path={ARCHIVE}"], TARGETS)
