"""The texts' baseline row: TF-IDF under the evaluation protocol, where images have their raw pixels.

TF-IDF is fitted on the training texts (word unigrams, ``sublinear_tf``, ``min_df`` 2, rows
L2-normalised). Its linear probes (all labels, 1 % and 10 %) run on the sparse matrix itself:
scikit-learn's ``LogisticRegression(C=1)``, as the protocol's probe, without the protocol's
standardisation (it would blow up the rarest words; the rows are unit-length already). Its kNN
and k-means run on the first ``SVD_DIMENSIONS`` SVD components, L2-normalised: tens of thousands
of sparse dimensions are no space for k-means, and there kNN did as well as on the sparse
matrix (docs/protocol.md, "Texts").
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from selfsup.config import EvaluationParams
from selfsup.evaluate import (
    evaluate_unlabelled,
    fraction_key,
    kmeans_labels,
    knn_predictions,
    score_predictions,
)
from selfsup.label_fractions import label_fraction

SVD_DIMENSIONS = 256
MIN_DF = 2


def tfidf_matrices(train_texts, other_texts):
    """Sparse TF-IDF of the training texts and of other texts, with the vocabulary of the training texts."""
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=MIN_DF)
    train = vectorizer.fit_transform(train_texts)
    return train, vectorizer.transform(other_texts)


def svd_features(train, other, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 unit-length rows of the top SVD components of the training matrix (at most its rank)."""
    components = min(SVD_DIMENSIONS, min(train.shape) - 1)
    svd = TruncatedSVD(components, random_state=seed).fit(train)
    return normalize(svd.transform(train)).astype(np.float32), normalize(svd.transform(other)).astype(np.float32)


def tfidf_row(
    train_texts, train_y: np.ndarray, test_texts, test_y: np.ndarray, params: EvaluationParams
) -> tuple[dict[str, float], dict[str, dict]]:
    """The protocol's metrics row of TF-IDF and each probe's convergence (iterations, converged)."""
    train, test = tfidf_matrices(train_texts, test_texts)
    dense_train, dense_test = svd_features(train, test, params.seed)
    predictions = {f"knn_k{k}": p for k, p in knn_predictions(dense_train, train_y, dense_test, params.knn_k).items()}
    subsets = {fraction_key(f): label_fraction(train_y, f, params.seed) for f in params.label_fractions}
    convergence = {}
    for key, rows in {"linear": slice(None), **subsets}.items():
        probe = LogisticRegression(C=1.0, max_iter=params.linear_max_iter).fit(train[rows], train_y[rows])
        predictions[key] = probe.predict(test)
        iterations = int(np.max(probe.n_iter_))
        convergence[key] = {"iterations": iterations, "converged": iterations < params.linear_max_iter}
    predictions["kmeans"] = kmeans_labels(dense_test, len(np.unique(train_y)))
    return score_predictions(predictions, test_y), convergence


def tfidf_unlabelled_row(train_texts, test_texts, params: EvaluationParams) -> dict[str, float]:
    """Without labels: the k-means structure of the test texts' TF-IDF (SVD) features."""
    train, test = tfidf_matrices(train_texts, test_texts)
    _, dense_test = svd_features(train, test, params.seed)
    return evaluate_unlabelled(dense_test, params.n_clusters)
