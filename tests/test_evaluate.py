import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from selfsup.evaluate import METRIC_KEYS, cluster_accuracy, evaluate_features, knn_accuracy, knn_predictions, label_fraction


def blobs(n_per_class=60, classes=4, dim=6, seed=0):
    """Gaussian blobs around fixed centres; ``seed`` draws a new sample of them."""
    centres = np.random.default_rng(123).normal(0, 4, (classes, dim))
    y = np.repeat(np.arange(classes), n_per_class)
    x = centres[y] + np.random.default_rng(seed).normal(0, 1, (len(y), dim))
    return x.astype(np.float32), y


def test_cluster_accuracy_is_invariant_to_cluster_names():
    truth = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_accuracy(truth, np.array([2, 2, 0, 0, 1, 1])) == 1.0
    assert cluster_accuracy(truth, np.array([1, 1, 1, 1, 0, 0])) == pytest.approx(4 / 6)


def test_knn_is_sklearn_cosine_distance_weighted():
    x, y = blobs()
    x_test, y_test = blobs(seed=1)
    reference = KNeighborsClassifier(20, metric="cosine", weights="distance").fit(x, y).predict(x_test)
    assert knn_accuracy(x, y, x_test, y_test, 20) == pytest.approx(np.mean(reference == y_test))


def test_label_fraction_is_stratified_and_seeded():
    y = np.repeat(np.arange(5), 100)
    chosen = label_fraction(y, 0.1, seed=0)
    assert len(chosen) == 50
    assert np.bincount(y[chosen]).tolist() == [10] * 5
    np.testing.assert_array_equal(chosen, label_fraction(y, 0.1, seed=0))


def test_label_fraction_that_drops_a_class_fails_clearly():
    y = np.array([0] * 200 + [1] * 2)
    with pytest.raises(ValueError, match="without an example"):
        label_fraction(y, 0.01)


def test_protocol_row_has_every_key_as_fraction():
    x, y = blobs()
    x_test, y_test = blobs(seed=1)
    row = evaluate_features(x, y, x_test, y_test, knn_k=(20, 200), label_fractions=(0.1, 0.5))
    assert set(row) == {"knn_k20", "knn_k200", "linear", "linear_10pct", "linear_50pct", "kmeans_nmi", "kmeans_ari", "kmeans_acc"}
    assert all(0 <= v <= 1 for v in row.values())
    assert row["linear"] > 0.9 and row["kmeans_acc"] > 0.9  # well separated blobs
    assert set(METRIC_KEYS) - set(row) == {"linear_1pct"}


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_knn_gives_sklearns_answers_for_every_k(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 16)).astype(np.float32)
    y = rng.integers(0, 7, 600)
    x_test = rng.normal(size=(300, 16)).astype(np.float32)
    x_test[:10] = x[:10] * 3.0  # same direction as a training row: cosine distance 0
    ours = knn_predictions(x, y, x_test, [1, 5, 20, 200], chunk=64)
    for k, predicted in ours.items():
        reference = KNeighborsClassifier(k, metric="cosine", weights="distance").fit(x, y).predict(x_test)
        np.testing.assert_array_equal(predicted, reference, err_msg=f"k={k}")
