"""kNN evaluation, 60,000 × 10,000 features: selfsup's chunked matmul + top-k vs scikit-learn.

Both compute KNeighborsClassifier(k, metric="cosine", weights="distance"); the
script checks the predictions are identical, then prints one JSON line.

    python benchmarks/knn.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, emit  # noqa: E402

from selfsup.evaluate import knn_predictions  # noqa: E402

TRAIN, TEST, DIM, CLASSES, K = 60_000, 10_000, 256, 10, 20


def clustered_features(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    centres = np.random.default_rng(0).normal(size=(CLASSES, DIM))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    return (centres[labels] + 2.0 * rng.normal(size=(n, DIM))).astype(np.float32), labels


def main() -> None:
    train_x, train_y = clustered_features(TRAIN, 1)
    test_x, _ = clustered_features(TEST, 2)
    sklearn_knn = KNeighborsClassifier(K, metric="cosine", weights="distance")
    reference = sklearn_knn.fit(train_x, train_y).predict(test_x)
    ours = knn_predictions(train_x, train_y, test_x, [K])[K]
    sklearn_s = best_time(lambda: sklearn_knn.fit(train_x, train_y).predict(test_x), repeats=1)
    selfsup_s = best_time(lambda: knn_predictions(train_x, train_y, test_x, [K]), repeats=3)
    emit({
        "benchmark": "knn",
        "shape": {"train": TRAIN, "test": TEST, "dim": DIM, "k": K},
        "sklearn_s": sklearn_s,
        "selfsup_s": selfsup_s,
        "identical_predictions": bool(np.array_equal(ours, reference)),
        "ratio": sklearn_s / selfsup_s,
        "target": 5.0,
    })


if __name__ == "__main__":
    main()
