"""kNN evaluation, 60,000 × 10,000 features: selfsup's chunked matmul + top-k vs scikit-learn.

Both compute KNeighborsClassifier(k, metric="cosine", weights="distance"); the
script checks the predictions are identical, times the pipeline's own case too
(k = 20 and 200 at once, 1,024-dim features; selfsup only), then prints one JSON line.

    python benchmarks/knn.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, emit

from selfsup.evaluate import knn_predictions

TRAIN, TEST, DIM, CLASSES, K = 60_000, 10_000, 256, 10, 20
PIPELINE_DIM, PIPELINE_KS = 1024, (20, 200)


def clustered_features(n: int, seed: int, dim: int = DIM) -> tuple[np.ndarray, np.ndarray]:
    centres = np.random.default_rng(0).normal(size=(CLASSES, dim))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    return (centres[labels] + 2.0 * rng.normal(size=(n, dim))).astype(np.float32), labels


def main() -> None:
    train_x, train_y = clustered_features(TRAIN, 1)
    test_x, _ = clustered_features(TEST, 2)
    sklearn_knn = KNeighborsClassifier(K, metric="cosine", weights="distance")
    reference = sklearn_knn.fit(train_x, train_y).predict(test_x)
    ours = knn_predictions(train_x, train_y, test_x, [K])[K]
    sklearn_s = best_time(lambda: sklearn_knn.fit(train_x, train_y).predict(test_x), repeats=1)
    selfsup_s = best_time(lambda: knn_predictions(train_x, train_y, test_x, [K]), repeats=3)
    (train_x, train_y), (test_x, _) = (
        clustered_features(TRAIN, 1, PIPELINE_DIM),
        clustered_features(TEST, 2, PIPELINE_DIM),
    )
    pipeline_s = best_time(lambda: knn_predictions(train_x, train_y, test_x, PIPELINE_KS), repeats=1)
    emit(
        {
            "benchmark": "knn",
            "shape": {"train": TRAIN, "test": TEST, "dim": DIM, "k": K},
            "sklearn_s": sklearn_s,
            "selfsup_s": selfsup_s,
            "identical_predictions": bool(np.array_equal(ours, reference)),
            "pipeline_case": {"dim": PIPELINE_DIM, "ks": list(PIPELINE_KS), "selfsup_s": pipeline_s},
            "ratio": sklearn_s / selfsup_s,
            "target": 5.0,
        }
    )


if __name__ == "__main__":
    main()
