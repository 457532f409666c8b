"""The evaluation protocol written with scikit-learn alone: the reference selfsup.evaluate is held to.

kNN (KNeighborsClassifier, cosine, 1/distance votes), the probe (StandardScaler +
LogisticRegression, C = 1, lbfgs) on all labels and on stratified label fractions
(train_test_split, seed 0), and k-means (n_init 10, k-means++, seed 0) scored by NMI.
Nothing here imports selfsup, so a benchmark that compares the two compares two
independent implementations.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def probe(train_x, train_y, tol: float = 1e-4, max_iter: int = 1000):
    """The fitted pipeline and its lbfgs convergence: iterations and whether it stopped at max_iter."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=tol, max_iter=max_iter))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(train_x, train_y)
    stopped = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return model, {"iterations": int(model[-1].n_iter_.max()), "converged": not stopped}


def fraction_subset(train_y: np.ndarray, fraction: float) -> np.ndarray:
    positions = np.arange(len(train_y))
    chosen, _ = train_test_split(positions, train_size=fraction, stratify=train_y, random_state=0)
    return np.sort(chosen)


def protocol(train_x, train_y, test_x, test_y, keys) -> tuple[dict[str, float], dict[str, dict], dict[str, float]]:
    """(metrics, probe convergence, seconds per metric) for the requested metric ``keys``, among
    knn_k20, knn_k200, linear, linear_1pct, linear_10pct, kmeans_nmi."""
    metrics, convergence, seconds = {}, {}, {}
    for key in keys:
        started = time.perf_counter()
        if key.startswith("knn_k"):
            knn = KNeighborsClassifier(int(key[5:]), metric="cosine", weights="distance").fit(train_x, train_y)
            metrics[key] = float(np.mean(knn.predict(test_x) == test_y))
        elif key.startswith("linear"):
            rows = slice(None) if key == "linear" else fraction_subset(train_y, float(key[7:-3]) / 100)
            model, convergence[key] = probe(train_x[rows], train_y[rows])
            metrics[key] = float(np.mean(model.predict(test_x) == test_y))
        elif key == "kmeans_nmi":
            clusters = KMeans(len(np.unique(train_y)), n_init=10, random_state=0).fit_predict(test_x)
            metrics[key] = float(normalized_mutual_info_score(test_y, clusters))
        else:
            raise ValueError(f"no scikit-learn reference for metric {key!r}")
        seconds[key] = time.perf_counter() - started
    return metrics, convergence, seconds
