"""selfsup's k-means is scikit-learn's KMeans(n_init=10, k-means++, seed 0): same seeds, same objective.

On real features (``feature_sets`` in conftest.py: Fashion-MNIST raw pixels and a short SimCLR
run's features) and on small made-up data for the edges.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.metrics import normalized_mutual_info_score

from selfsup.kmeans import _seeds, kmeans_labels


def inertia(x: np.ndarray, labels: np.ndarray) -> float:
    """The k-means objective of a partition: squared distances to each cluster's mean, in float64."""
    x = x.astype(np.float64)
    return float(sum(np.square(x[labels == c] - x[labels == c].mean(axis=0)).sum() for c in np.unique(labels)))


def sklearn_labels(x, k: int) -> np.ndarray:
    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(x)


@pytest.mark.parametrize("name", ["raw_pixels", "ssl"])
def test_kmeans_reaches_sklearns_objective_and_scores(feature_sets, name):
    _, _, test_x, test_y = feature_sets[name]
    ours, theirs = kmeans_labels(test_x, 10), sklearn_labels(test_x, 10)
    assert inertia(test_x, ours) <= inertia(test_x, theirs) * (1 + 1e-3)
    nmi = lambda labels: normalized_mutual_info_score(test_y, labels)
    assert abs(nmi(ours) - nmi(theirs)) <= 0.002


def test_the_seeds_are_sklearns_kmeans_plusplus_seeds_in_order():
    x = np.random.default_rng(0).normal(size=(500, 6)).astype(np.float32)
    x -= x.mean(axis=0)
    ours = _seeds(x, 4, np.random.RandomState(3))
    state = np.random.RandomState(3)
    for run in range(len(ours)):
        np.testing.assert_array_equal(ours[run], kmeans_plusplus(x, 4, random_state=state)[0])


def test_separated_blobs_get_sklearns_exact_partition_in_float32_and_float64():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=6, size=(5, 8))
    x = np.concatenate([centre + rng.normal(size=(80, 8)) for centre in centres])
    for dtype in (np.float32, np.float64):
        data = x.astype(dtype)
        assert np.array_equal(kmeans_labels(data, 5), sklearn_labels(data, 5))


def test_sparse_rows_and_emptied_clusters_are_left_to_sklearn():
    rng = np.random.default_rng(2)
    tfidf = sp.random(60, 30, density=0.2, format="csr", random_state=2)
    assert np.array_equal(kmeans_labels(tfidf, 3), sklearn_labels(tfidf, 3))
    duplicates = np.repeat(rng.normal(size=(3, 4)), 10, axis=0).astype(np.float32)  # 3 points, 5 clusters
    with pytest.warns(Warning, match="distinct clusters"):
        assert np.array_equal(kmeans_labels(duplicates, 5), sklearn_labels(duplicates, 5))


def test_fewer_rows_than_clusters_get_sklearns_error():
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=5"):
        kmeans_labels(np.zeros((3, 2), dtype=np.float32), 5)
