"""The evaluation protocol of DESIGN.md, on frozen features.

kNN (cosine, 1/distance votes), a standardised logistic-regression probe on all
labels and on stratified label fractions, and k-means clustering scored by NMI,
ARI and Hungarian-matched accuracy. Train split fits, test split scores.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from selfsup.errors import ParameterError

logger = logging.getLogger(__name__)

METRIC_KEYS = ("knn_k20", "knn_k200", "linear", "linear_1pct", "linear_10pct", "kmeans_nmi", "kmeans_ari", "kmeans_acc")


def knn_predictions(train_x, train_y, test_x, ks, chunk: int = 1024) -> dict[int, np.ndarray]:
    """Predictions of ``KNeighborsClassifier(k, metric="cosine", weights="distance")`` for each k.

    The same rule, computed as one matrix product per chunk of test rows and
    one top-max(k) shared by every k: votes are 1/distance, and where a test
    row has neighbours at distance 0 only those vote (scikit-learn's convention).
    """
    classes, codes = np.unique(train_y, return_inverse=True)
    train = torch.nn.functional.normalize(torch.tensor(np.asarray(train_x, np.float32)), dim=1)
    test = torch.nn.functional.normalize(torch.tensor(np.asarray(test_x, np.float32)), dim=1)
    codes = torch.as_tensor(codes)
    predictions = {k: np.empty(len(test), dtype=np.int64) for k in ks}
    for start in range(0, len(test), chunk):
        similarity, neighbours = (test[start : start + chunk] @ train.T).topk(max(ks), dim=1)
        distance = (1.0 - similarity.double()).clamp_(min=0.0)
        for k in ks:
            predictions[k][start : start + chunk] = _distance_weighted_vote(distance[:, :k], codes[neighbours[:, :k]], len(classes))
    return {k: classes[p] for k, p in predictions.items()}


def _distance_weighted_vote(distance: torch.Tensor, neighbour_codes: torch.Tensor, n_classes: int) -> np.ndarray:
    exact = distance == 0
    weights = torch.where(exact.any(dim=1, keepdim=True), exact.double(), 1.0 / distance.clamp(min=1e-300))
    votes = torch.zeros(len(distance), n_classes, dtype=torch.float64)
    votes.scatter_add_(1, neighbour_codes, weights)
    return votes.argmax(dim=1).numpy()


def knn_accuracy(train_x, train_y, test_x, test_y, k: int) -> float:
    return float(np.mean(knn_predictions(train_x, train_y, test_x, [k])[k] == test_y))


def linear_probe(train_x, train_y, test_x, max_iter: int = 1000) -> np.ndarray:
    """Test-set predictions of LogisticRegression (lbfgs, C=1) on standardised features."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, solver="lbfgs", max_iter=max_iter))
    probe.fit(train_x, train_y)
    return probe.predict(test_x)


def label_fraction(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Positions of a stratified ``fraction`` of ``labels``; every class keeps an example."""
    positions = np.arange(len(labels))
    where = f"evaluation.label_fractions={fraction} of {len(labels)} training labels"
    try:
        chosen, _ = train_test_split(positions, train_size=fraction, stratify=labels, random_state=seed)
    except ValueError as error:  # scikit-learn: fewer picks than classes, or a class of one
        raise ParameterError(f"{where} cannot give every class an example ({error}); raise the fraction") from None
    missing = set(np.unique(labels)) - set(np.unique(labels[chosen]))
    if missing:
        raise ParameterError(
            f"{where} leaves classes {sorted(missing)} without an example; raise the fraction"
        )
    return np.sort(chosen)


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy after the best one-to-one matching of clusters to classes (Hungarian)."""
    classes, true_codes = np.unique(y_true, return_inverse=True)
    clusters, pred_codes = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(counts, (pred_codes, true_codes), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(y_true))


def kmeans_labels(x: np.ndarray, n_clusters: int) -> np.ndarray:
    return KMeans(n_clusters=n_clusters, n_init=10, random_state=0).fit_predict(x)


def cluster_scores(test_y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """NMI, ARI and Hungarian-matched accuracy of cluster assignments against the labels."""
    return {
        "kmeans_nmi": float(normalized_mutual_info_score(test_y, predicted)),
        "kmeans_ari": float(adjusted_rand_score(test_y, predicted)),
        "kmeans_acc": cluster_accuracy(test_y, predicted),
    }


def fraction_key(fraction: float) -> str:
    return f"linear_{fraction * 100:g}pct"


def protocol_predictions(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    knn_k=(20, 200),
    label_fractions=(0.01, 0.1),
    max_iter: int = 1000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Every protocol's test-set predictions, keyed like the metrics row; ``kmeans`` holds the
    cluster of each test row (k = number of train classes)."""
    too_large = [k for k in knn_k if k > len(train_x)]
    if too_large:
        raise ParameterError(
            f"evaluation.knn_k={too_large} exceeds the {len(train_x)} labelled training images; lower it"
        )
    subsets = {fraction: label_fraction(train_y, fraction, seed) for fraction in label_fractions}
    predictions = {f"knn_k{k}": predicted for k, predicted in knn_predictions(train_x, train_y, test_x, knn_k).items()}
    predictions["linear"] = linear_probe(train_x, train_y, test_x, max_iter)
    for fraction, subset in subsets.items():
        predictions[fraction_key(fraction)] = linear_probe(train_x[subset], train_y[subset], test_x, max_iter)
    predictions["kmeans"] = kmeans_labels(test_x, len(np.unique(train_y)))
    return predictions


def score_predictions(predictions: dict[str, np.ndarray], test_y: np.ndarray) -> dict[str, float]:
    """The metrics row: accuracy of each classifier, NMI / ARI / accuracy of the clusters."""
    row = {key: float(np.mean(predicted == test_y)) for key, predicted in predictions.items() if key != "kmeans"}
    row.update(cluster_scores(test_y, predictions["kmeans"]))
    return row


def evaluate_features(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    knn_k=(20, 200),
    label_fractions=(0.01, 0.1),
    max_iter: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """One row of the protocol for one set of features."""
    predictions = protocol_predictions(train_x, train_y, test_x, knn_k, label_fractions, max_iter, seed)
    return score_predictions(predictions, test_y)


def evaluate_unlabelled(test_x: np.ndarray, n_clusters: int) -> dict[str, float]:
    """What needs no labels: how well k-means separates the test features (cosine silhouette)."""
    if len(test_x) <= n_clusters:
        raise ParameterError(
            f"evaluation.n_clusters={n_clusters} needs more than {n_clusters} test images, got {len(test_x)}"
        )
    predicted = kmeans_labels(test_x, n_clusters)
    return {"kmeans_silhouette": float(silhouette_score(test_x, predicted, metric="cosine"))}
