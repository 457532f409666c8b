import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from selfsup import evaluate
from selfsup.evaluate import (
    METRIC_KEYS,
    cluster_accuracy,
    evaluate_features,
    knn_accuracy,
    knn_predictions,
)
from selfsup.label_fractions import label_fraction


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
    assert set(row) == {
        "knn_k20",
        "knn_k200",
        "linear",
        "linear_10pct",
        "linear_50pct",
        "kmeans_nmi",
        "kmeans_ari",
        "kmeans_acc",
    }
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


def near_duplicates(copies, n_other, dim=32, spread=1e-3, seed=0):
    """Training rows: ``copies`` tiny perturbations of one direction (closer together than bf16
    can tell apart) plus ``n_other`` random rows, labelled 0 or 1 at random; test rows near that
    direction. (Two classes and odd k: the near-equal 1/distance votes never tie.)"""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=dim)
    base /= np.linalg.norm(base)
    x = np.concatenate([base + spread * rng.normal(size=(copies, dim)), rng.normal(size=(n_other, dim))])
    y = rng.integers(0, 2, len(x))
    x_test = base + 0.3 * rng.normal(size=(50, dim)) / np.sqrt(dim)
    return x.astype(np.float32), y, x_test.astype(np.float32)


def full_search_calls(monkeypatch):
    """Test rows that ``knn_predictions`` searched in full float32, as a list that fills up."""
    searched = []
    original = evaluate._full_search

    def spy(queries, train, k):
        searched.append(len(queries))
        return original(queries, train, k)

    monkeypatch.setattr(evaluate, "_full_search", spy)
    return searched


def assert_sklearns_answers(x, y, x_test, ks):
    ours = knn_predictions(x, y, x_test, ks, chunk=16)
    for k in ks:
        reference = KNeighborsClassifier(k, metric="cosine", weights="distance").fit(x, y).predict(x_test)
        np.testing.assert_array_equal(ours[k], reference, err_msg=f"k={k}")


def crowded(n_test=20, per_test=60, n_other=20_000, dim=32, seed=0):
    """Test rows each with ``per_test`` distinct training rows at cosine similarities 0.8996 ... 0.9012,
    across a bf16 rounding boundary (0.90039; steps are 0.004 there), hidden among ``n_other`` random
    rows; labels 0 or 1."""
    rng = np.random.default_rng(seed)
    x_test = rng.normal(size=(n_test, dim))
    x_test /= np.linalg.norm(x_test, axis=1, keepdims=True)
    similarity = rng.uniform(0.8996, 0.9012, size=(n_test, per_test, 1))
    other = rng.normal(size=(n_test, per_test, dim))
    other -= (other @ x_test[:, :, None]) * x_test[:, None, :]  # orthogonal to the test row
    other /= np.linalg.norm(other, axis=2, keepdims=True)
    close = similarity * x_test[:, None, :] + np.sqrt(1 - similarity**2) * other
    x = rng.permutation(np.concatenate([close.reshape(-1, dim), rng.normal(size=(n_other, dim))]))
    return x.astype(np.float32), rng.integers(0, 2, len(x)), x_test.astype(np.float32)


def unit(rows: np.ndarray) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows), dim=1)


@pytest.mark.parametrize("activations", ["relu", "normal"])
def test_every_screened_score_is_within_its_stated_error(activations):
    """s = bf16(y) with |y - z| <= epsilon and |s - y| <= u |y|, z = a.b - K_a - t_a in float64:
    so |s - z| <= epsilon + u (|z| + epsilon) for every pair, the shift t_a included."""
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(3000, 48))
    rows = np.maximum(rows, 0) if activations == "relu" else rows  # ReLU features all point one way
    train, test = unit(rows[:2500].astype(np.float32)), unit(rows[2500:].astype(np.float32))
    screen = evaluate._screen(train, test, k=20)
    scores = (screen.test @ screen.train_t).double()
    order = torch.arange(screen.train_t.shape[1]).view(screen.width, screen.group).T.reshape(-1)  # column -> row
    keep = order < len(train)
    scores, order = scores[:, keep], order[keep]
    wide_train, wide_test = train.double(), test.double()
    centre = train.mean(dim=0).double()
    constant = wide_test @ centre - centre @ centre + (wide_train @ centre).mean()  # K_a
    shift = -screen.test[:, -1].double()
    exact = wide_test @ wide_train[order].T - constant[:, None] - shift[:, None]
    epsilon = screen.epsilon[:, None]
    assert ((scores - exact).abs() <= epsilon + evaluate.ROUNDING * (exact.abs() + epsilon)).all()
    assert (shift.abs() < exact.abs().max()).all()  # the shift is a score of the row


def test_the_screen_is_the_same_whatever_its_chunks():
    """The training operand is written chunk by chunk into its group order: chunks of two groups, and a
    last group that is only partly filled (1,003 rows, groups of 16), give what one chunk gives."""
    rng = np.random.default_rng(5)
    train, test = (
        unit(rng.normal(size=(1003, 24)).astype(np.float32)),
        unit(rng.normal(size=(50, 24)).astype(np.float32)),
    )
    whole = evaluate._screen(train, test, k=20)
    pieces = evaluate._screen(train, test, k=20, chunk_rows=40)
    assert whole.group == 16 and len(train) % whole.group
    assert torch.equal(whole.train_t, pieces.train_t) and torch.equal(whole.epsilon, pieces.epsilon)
    order = torch.arange(whole.train_t.shape[1]).view(whole.width, whole.group).T.reshape(-1)  # column -> row
    real = order < len(train)
    rounded = (train - train.mean(dim=0)).bfloat16()
    assert torch.equal(whole.train_t[:-3, real].T, rounded[order[real]])
    assert not whole.train_t[:, ~real].any()  # the padding columns are zero


def test_knn_orders_neighbours_bf16_cannot_tell_apart(monkeypatch):
    x, y, x_test = crowded()
    exact = (unit(x_test) @ unit(x).T).topk(21, dim=1).indices.sort(dim=1).values
    rounded = (unit(x_test).bfloat16() @ unit(x).bfloat16().T).float().topk(21, dim=1).indices.sort(dim=1).values
    assert (exact != rounded).any(dim=1).float().mean() > 0.5  # a plain bf16 search picks wrong neighbours
    searched = full_search_calls(monkeypatch)
    assert_sklearns_answers(x, y, x_test, [1, 5, 21])
    ((_, _, neighbours),) = evaluate._nearest_neighbours(unit(x), unit(x_test), 21, chunk=len(x_test))
    reference = NearestNeighbors(n_neighbors=21, metric="cosine").fit(x).kneighbors(x_test, return_distance=False)
    np.testing.assert_array_equal(np.sort(neighbours.numpy()), np.sort(reference))
    assert searched == []  # answered by the screen plus float32 products alone


def test_knn_searches_in_full_where_too_many_rows_pass_the_screen(monkeypatch):
    x, y, x_test = near_duplicates(copies=400, n_other=600)
    searched = full_search_calls(monkeypatch)
    assert_sklearns_answers(x, y, x_test, [5, 21])
    assert sum(searched) == len(x_test)
