"""The TF-IDF baseline row: its sparse kNN is the protocol's kNN, its probe the protocol's probe, and the
row has the protocol's keys."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from selfsup.config import EvaluationParams
from selfsup.evaluate import knn_predictions
from selfsup.probe import fit_linear_probe
from selfsup.text.tfidf import fit_sparse_probe, sparse_knn_predictions, tfidf_row, tfidf_unlabelled_row
from tests.text_data import topic_sentences


def test_the_sparse_knn_predicts_what_the_protocols_knn_predicts():
    rng = np.random.default_rng(0)
    dense = rng.random((300, 40)) * (rng.random((300, 40)) < 0.2)
    dense[dense.sum(1) == 0, 0] = 1.0
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    labels = rng.integers(0, 4, 300)
    sparse = sp.csr_matrix(dense)
    expected = knn_predictions(dense[:200], labels[:200], dense[200:], (1, 7, 50))
    got = sparse_knn_predictions(sparse[:200], labels[:200], sparse[200:], (1, 7, 50), chunk=32)
    for k in (1, 7, 50):
        assert np.mean(got[k] == expected[k]) >= 0.99  # ties between equal distances may break apart


def test_the_sparse_probe_is_the_protocols_probe_on_the_same_rows():
    """Standardised without centring (the matrix stays sparse): the same classifier as the protocol's
    probe, which centres, since the unpenalised intercepts absorb the column means."""
    rng = np.random.default_rng(0)
    dense = rng.random((400, 40)) * (rng.random((400, 40)) < 0.3)
    labels = (dense[:, :4].argmax(1) + (rng.random(400) < 0.2) * rng.integers(0, 4, 400)) % 4
    dense[dense.sum(1) == 0, 0] = 1.0
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    sparse = sp.csr_matrix(dense)
    theirs = fit_sparse_probe(sparse[:300], labels[:300], max_iter=1000)
    ours = fit_linear_probe(dense[:300], labels[:300], tolerance=1e-5)
    weights = ours.weights.numpy()
    assert np.linalg.norm(weights - theirs[-1].coef_) <= 0.01 * np.linalg.norm(theirs[-1].coef_)
    assert np.mean(theirs.predict(sparse[300:]) == ours.predict(dense[300:])) >= 0.98
    tenfold = fit_sparse_probe(sparse[:300] * 10.0, labels[:300], max_iter=1000)  # standardised: scale-free
    assert np.allclose(tenfold[-1].coef_, theirs[-1].coef_, rtol=1e-3, atol=1e-4)


def test_the_tfidf_row_separates_distinct_topics_and_has_the_protocols_keys():
    pairs = topic_sentences(40)
    texts = np.array([sentence for sentence, _ in pairs], dtype=object)
    labels = np.array([["animals", "food", "tools"].index(topic) for _, topic in pairs])
    train = np.arange(len(texts)) % 5 != 0
    params = EvaluationParams(knn_k=(5, 20), label_fractions=(0.25,))
    row, convergence = tfidf_row(texts[train], labels[train], texts[~train], labels[~train], params)
    assert set(row) == {"knn_k5", "knn_k20", "linear", "linear_25pct", "kmeans_nmi", "kmeans_ari", "kmeans_acc"}
    assert row["linear"] > 0.9 and row["knn_k5"] > 0.9
    assert set(convergence) == {"linear", "linear_25pct"} and convergence["linear"]["converged"]
    assert set(tfidf_unlabelled_row(texts[train], texts[~train], EvaluationParams(n_clusters=3))) == {
        "kmeans_silhouette"
    }
