"""The texts' baseline row: TF-IDF under the evaluation protocol, where images have their raw pixels.

TF-IDF is fitted on the training texts (word unigrams, ``sublinear_tf``, ``min_df`` 2, rows
L2-normalised), and the whole protocol runs on the sparse matrix itself: the protocol's kNN rule
(cosine, votes 1/distance) by sparse × dense products, its k-means (scikit-learn's, on sparse
rows), and its linear probe (``fit_sparse_probe``). SVD to 256 dimensions was worse on WordNet
for kNN (kNN20 0.596 against 0.749) and for k-means (NMI 0.163 against 0.168), so it is not
used (docs/protocol.md, "Texts").
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from selfsup.config import EvaluationParams
from selfsup.evaluate import (
    distance_weighted_vote,
    evaluate_unlabelled,
    fraction_key,
    score_predictions,
)
from selfsup.kmeans import kmeans_labels
from selfsup.label_fractions import label_fraction

MIN_DF = 2


def tfidf_matrices(train_texts, other_texts):
    """Sparse TF-IDF of the training texts and of other texts, with the vocabulary of the training texts."""
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=MIN_DF)
    train = vectorizer.fit_transform(train_texts)
    return train, vectorizer.transform(other_texts)


def sparse_knn_predictions(train, train_y: np.ndarray, test, ks, chunk: int = 1024) -> dict[int, np.ndarray]:
    """The protocol's kNN (cosine, votes 1/distance; ``selfsup.evaluate.knn_predictions``) on unit-length
    sparse rows: each chunk of test rows against every training row in one sparse × dense product."""
    classes, codes = np.unique(train_y, return_inverse=True)
    codes = torch.as_tensor(codes)
    train = train.tocsr().astype(np.float32)
    predictions = {k: np.empty(test.shape[0], dtype=np.int64) for k in ks}
    for start in range(0, test.shape[0], chunk):
        queries = test[start : start + chunk].T.toarray().astype(np.float32)
        similarity, neighbours = torch.from_numpy(np.ascontiguousarray((train @ queries).T)).topk(max(ks), dim=1)
        distance = (1.0 - similarity.double()).clamp_(min=0.0)
        rows = slice(start, start + len(distance))
        for k in ks:
            predictions[k][rows] = distance_weighted_vote(distance[:, :k], codes[neighbours[:, :k]], len(classes))
    return {k: classes[p] for k, p in predictions.items()}


def fit_sparse_probe(train, train_y: np.ndarray, max_iter: int) -> Pipeline:
    """The protocol's linear probe (``selfsup.probe``: standardised features, multinomial logistic
    regression, C = 1) on a sparse matrix. Each column is divided by its standard deviation but not
    centred: centring would make the matrix dense, and it cannot change the classifier, since
    subtracting the column means only shifts every class's logit by a constant that the unpenalised
    intercepts take up."""
    return make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=1.0, max_iter=max_iter)).fit(
        train, train_y
    )


def tfidf_row(
    train_texts, train_y: np.ndarray, test_texts, test_y: np.ndarray, params: EvaluationParams
) -> tuple[dict[str, float], dict[str, dict]]:
    """The protocol's metrics row of TF-IDF and each probe's convergence (iterations, converged)."""
    train, test = tfidf_matrices(train_texts, test_texts)
    knn = sparse_knn_predictions(train, train_y, test, params.knn_k)
    predictions = {f"knn_k{k}": predicted for k, predicted in knn.items()}
    subsets = {fraction_key(f): label_fraction(train_y, f, params.seed) for f in params.label_fractions}
    convergence = {}
    for key, rows in {"linear": slice(None), **subsets}.items():
        probe = fit_sparse_probe(train[rows], train_y[rows], params.linear_max_iter)
        predictions[key] = probe.predict(test)
        iterations = int(np.max(probe[-1].n_iter_))
        convergence[key] = {"iterations": iterations, "converged": iterations < params.linear_max_iter}
    predictions["kmeans"] = kmeans_labels(test, len(np.unique(train_y)))
    return score_predictions(predictions, test_y), convergence


def tfidf_unlabelled_row(train_texts, test_texts, params: EvaluationParams) -> dict[str, float]:
    """Without labels: the k-means structure of the test texts' TF-IDF."""
    _, test = tfidf_matrices(train_texts, test_texts)
    return evaluate_unlabelled(test, params.n_clusters)
