"""The evaluation protocol (README, "Evaluation protocol"), on frozen features.

kNN (cosine, 1/distance votes), a standardised logistic-regression probe on all
labels and on stratified label fractions, and k-means clustering scored by NMI,
ARI and Hungarian-matched accuracy. Train split fits, test split scores.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from selfsup.errors import ParameterError
from selfsup.kmeans import kmeans_labels
from selfsup.label_fractions import label_fraction
from selfsup.probe import TOLERANCE, Convergence, fit_linear_probe

logger = logging.getLogger(__name__)

ROUNDING = 2.0**-8  # unit roundoff of bf16 (8 significant bits): |bf16(y) - y| <= ROUNDING |y|
METRIC_KEYS = ("knn_k20", "knn_k200", "linear", "linear_1pct", "linear_10pct", "kmeans_nmi", "kmeans_ari", "kmeans_acc")


def knn_predictions(train_x, train_y, test_x, ks, chunk: int = 1024) -> dict[int, np.ndarray]:
    """Predictions of ``KNeighborsClassifier(k, metric="cosine", weights="distance")`` for each k.

    The same rule, computed per chunk of test rows with one search for the
    max(k) nearest neighbours shared by every k (see ``_nearest_neighbours``):
    votes are 1/distance, and where a test row has neighbours at distance 0
    only those vote (scikit-learn's convention).
    """
    classes, codes = np.unique(train_y, return_inverse=True)
    train, test = _unit_rows(train_x), _unit_rows(test_x)
    codes = torch.as_tensor(codes)
    predictions = {k: np.empty(len(test), dtype=np.int64) for k in ks}
    for rows, similarity, neighbours in _nearest_neighbours(train, test, max(ks), chunk):
        distance = (1.0 - similarity.double()).clamp_(min=0.0)
        for k in ks:
            predictions[k][rows] = distance_weighted_vote(distance[:, :k], codes[neighbours[:, :k]], len(classes))
    return {k: classes[p] for k, p in predictions.items()}


def _unit_rows(x) -> torch.Tensor:
    """A float32 row-major copy of ``x`` with each row divided by max(norm, 1e-12), in place
    (``torch.nn.functional.normalize``'s result without its temporaries)."""
    rows = torch.from_numpy(np.array(x, dtype=np.float32, order="C"))
    return rows.div_(torch.linalg.vector_norm(rows, dim=1, keepdim=True).clamp_(min=1e-12))


def _nearest_neighbours(train: torch.Tensor, test: torch.Tensor, k: int, chunk: int):
    """Yield ``(rows, similarity, neighbours)`` for each chunk of test rows: the k training
    rows of largest float32 dot product (unit rows: cosine similarity), largest first.

    Fast and still exact. A bf16 matrix product (AMX, AVX-512 BF16) screens every pair
    (``_screen``); only the pairs that could be among the k nearest (``_candidates``) get
    their similarity computed in float32, and those decide.
    """
    screen = _screen(train, test, k)
    buffer = torch.empty(min(chunk, len(test)), screen.train_t.shape[1], dtype=torch.bfloat16)  # reused: no page faults
    for start in range(0, len(test), chunk):
        rows = slice(start, start + chunk)
        queries, scores = test[rows], buffer[: len(test[rows])]
        torch.mm(screen.test[rows], screen.train_t, out=scores)
        row, column, unsure = _candidates(screen, scores, screen.epsilon[rows])
        similarity, neighbours = _top_of_pairs(queries, train, row, column, k)
        if unsure.any():
            similarity[unsure], neighbours[unsure] = _full_search(queries[unsure], train, k)
        yield rows, similarity, neighbours


@dataclass
class _Screen:
    """bf16 rows whose products screen every (test, training) pair; see ``_screen``."""

    train_t: torch.Tensor  # (dim + 3, width * group): columns [b - m, hi(c_b), lo(c_b), 1], in group order
    test: torch.Tensor  # (len(test), dim + 3): [a - m, 1, 1, -t_a]
    padding: torch.Tensor  # the columns of the zero rows that pad the last group
    epsilon: torch.Tensor  # (len(test),) float64: how far a screened score can be off, bf16 rounding aside
    k: int
    group: int  # training rows per group
    width: int  # groups
    limit: int  # most candidate pairs of a test row before it is searched in full


def _screen(train: torch.Tensor, test: torch.Tensor, k: int, chunk_rows: int = 4096) -> _Screen:
    """The screen of ``test`` against ``train`` (unit rows).

    What is screened. For one test row a, the training rows rank by a.b, and with any
    fixed centre m, a.b = (a - m).(b - m) + c_b + K_a, with c_b = b.m - mean_b(b.m) and
    K_a constant along the row; so they rank by the score (a - m).(b - m) + c_b - t_a
    for any t_a. The screen is the bf16 product of [a - m, 1, 1, -t_a] and
    [b - m, hi(c_b), lo(c_b), 1] (c_b split into two bf16 numbers): features that all
    point one way (non-negative activations) leave small residuals, and the screen's
    error shrinks with them; t_a, the row's k-th largest score estimated on a sample of
    training rows, puts the scores that decide (those near the k-th) near 0, where
    rounding the product to bf16 costs least.
    """
    n, dim = train.shape
    group = max(1, min(16, n // k))
    width = -(-n // group)
    centre = train.mean(dim=0)
    offset = train @ centre
    offset -= offset.mean()
    offset_hi = offset.bfloat16()
    offset_lo = (offset - offset_hi.float()).bfloat16()
    split = float((offset.double() - offset_hi.double() - offset_lo.double()).abs().max())
    extra = torch.stack([offset_hi, offset_lo, torch.ones(n, dtype=torch.bfloat16)], dim=1)
    train_t, train_norm, train_error = _training_side(train, centre, extra, group, chunk_rows)
    row_of_column = torch.arange(width * group).view(width, group).T.reshape(-1)
    padding = (row_of_column >= n).nonzero().squeeze(1)
    test_residual = test - centre
    test_bf16 = torch.cat([test_residual, torch.ones(len(test), 2), torch.zeros(len(test), 1)], dim=1).bfloat16()
    sampled = torch.arange(0, n, max(1, n // _SCORE_SAMPLE))  # evenly spaced training rows
    columns = (sampled % group) * width + sampled // group
    shift = _kth_score_estimate(test_bf16, train_t[:, columns].T, n, k)
    test_bf16[:, dim + 2] = -shift
    epsilon = _screen_error(centre, train_norm, train_error, test_residual, test_bf16[:, :dim], offset, split, shift)
    return _Screen(train_t, test_bf16, padding, epsilon, k, group, width, limit=max(4 * k, n // 16))


def _training_side(train: torch.Tensor, centre: torch.Tensor, extra: torch.Tensor, group: int, chunk_rows: int):
    """The screen's training operand, (dim + 3) × (width · group) bf16 with columns
    [b - m, ``extra``] ([hi(c_b), lo(c_b), 1]), and the largest norm of a residual b - m and of its
    rounding error.

    Column g · width + p holds training row p · group + g: the groups are the slices
    [:, g · width + p] over g (a vectorised max), and hits come out sorted by row. Written
    chunk by chunk (no n × dim temporaries) and transposed: this operand runs twice as
    fast as its transpose in a bf16 product on CPUs with AMX."""
    n, dim = train.shape
    width = -(-n // group)
    train_t = torch.zeros(dim + 3, width * group, dtype=torch.bfloat16)  # zero columns pad the last group
    by_row = train_t.view(dim + 3, group, width).permute(2, 1, 0)  # [p, g]: training row p · group + g
    largest_norm = largest_error = 0.0
    step = max(1, chunk_rows // group) * group
    for first in range(0, n, step):
        residual = train[first : first + step] - centre
        rounded = residual.bfloat16()
        largest_norm = max(largest_norm, float(residual.norm(dim=1).max()))
        largest_error = max(largest_error, float((residual - rounded.float()).norm(dim=1).max()))
        rows = torch.cat([rounded, extra[first : first + step]], dim=1)
        whole, rest = divmod(len(rows), group)
        place = first // group
        by_row[place : place + whole] = rows[: whole * group].view(whole, group, dim + 3)
        if rest:  # the last, partial group
            by_row[place + whole, :rest] = rows[whole * group :]
    return train_t, largest_norm, largest_error


_SCORE_SAMPLE = 4096  # training rows that estimate each test row's k-th score


def _kth_score_estimate(test_rows: torch.Tensor, sample: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """bf16, per test row: the score as many places down ``sample`` (screen rows of evenly
    spaced training rows) as the k-th largest is down all ``n``. Any value keeps the screen
    exact; a close one makes it tighter."""
    place = min(len(sample), -(-k * len(sample) // n))
    return (test_rows @ sample.T).float().topk(place, dim=1).values[:, -1].bfloat16()


def _screen_error(centre, train_norm, train_error, test_residual, test_rounded, offset, split, shift):
    """epsilon, per test row: a screened score s = bf16(y) has |y - (a.b - K_a - t_a)| <= epsilon
    (a.b the float32 similarity), and then |s - y| <= ROUNDING * |y| (``_exclusion_bound`` uses both).

    Why. With a' = a - m = r + e_a (r = rounded to bf16) and likewise b',
    a'.b' - r_a.r_b = e_a.b' + r_a.e_b, so |error| <= (|e_a| + max|e_b|) * n, n >= every
    residual norm, rounded or not. Summing exact products of bf16 values in float32 adds
    at most gamma * (n^2 + 2 max|c| + |t_a|), gamma = d 2^-24 / (1 - d 2^-24), in any order;
    splitting c_b loses what ``split`` measures; and float32 arithmetic on the residuals, the
    offsets and the final dot products (unit rows) adds less than ``slack``.
    """
    dim = test_residual.shape[1]
    norm = max(train_norm, float(test_residual.norm(dim=1).max())) * (1 + 2.0**-8)
    largest_offset = float(offset.abs().max()) * (1 + 2.0**-8)
    gamma = (dim + 3) * 2.0**-24 / (1 - (dim + 3) * 2.0**-24)
    # float32: the final dot products of unit rows, the offsets b.m, the residuals
    unit_gamma = dim * 2.0**-24 / (1 - dim * 2.0**-24) * (1 + 1e-5) ** 2
    slack = unit_gamma * (1 + float(centre.norm())) + 2.0**-20 * (norm**2 + largest_offset) + 1e-6
    test_error = (test_residual - test_rounded.float()).double().norm(dim=1)
    accumulation = gamma * (norm**2 + 2 * largest_offset + shift.double().abs())
    return (test_error + train_error) * norm + accumulation + split + slack


def _candidates(screen: _Screen, scores: torch.Tensor, epsilon: torch.Tensor):
    """The pairs ``(row, column)`` of a chunk's screened ``scores`` that could be among the k
    nearest, sorted by row then column, and the rows that are ``unsure`` (none of their pairs
    returned: they are searched in full).

    Take s <= the k-th largest screened score of a test row: a pair screened below
    ``_exclusion_bound(s)`` has float32 similarity strictly below k other pairs', so it is not
    among the k nearest, ties included. Test rows where more than ``limit`` pairs pass that
    screen are searched in full in float32 instead (degenerate data: many equal or near-equal
    similarities).

    The screen sorts nothing: training rows are taken ``group`` at a time, s is the k-th
    largest of the groups' maxima (k groups each hold a score >= s), and only the groups
    whose maximum passes are looked into.
    """
    if len(screen.padding):
        scores[:, screen.padding] = -torch.inf
    groups = scores.view(len(scores), screen.group, screen.width)
    best = groups.amax(dim=1)
    bound = _exclusion_bound(best.topk(screen.k, dim=1).values[:, -1].double(), epsilon)
    bound = torch.nextafter(bound.float(), torch.tensor(-torch.inf))  # round down, never up
    row, position = (best >= bound[:, None]).nonzero(as_tuple=True)
    hit, member = (groups[row, :, position] >= bound[row, None]).nonzero(as_tuple=True)
    row, column = row[hit], position[hit] * screen.group + member  # sorted by row, then column
    unsure = torch.bincount(row, minlength=len(scores)) > screen.limit
    if unsure.any():
        row, column = row[~unsure[row]], column[~unsure[row]]
    return row, column, unsure


def _exclusion_bound(kth: torch.Tensor, epsilon: torch.Tensor) -> torch.Tensor:
    """The screened score below which a pair is surely not among the k nearest, given the k-th
    largest screened score ``kth`` (``_screen_error``: s = bf16(y), |y - z| <= epsilon).

    A screened s >= 0 has y in [s / (1 + u), s / (1 - u)], a negative one y in
    [s / (1 - u), s / (1 + u)] (u = ROUNDING, round to nearest keeps the sign). So k pairs
    have z >= lowest = y_min(kth) - epsilon, and a pair has z <= y_max(s) + epsilon: it is
    out, ties included, when that is below lowest, that is when s < y_max^-1(lowest - epsilon).
    """
    lowest = torch.where(kth >= 0, kth / (1 + ROUNDING), kth / (1 - ROUNDING)) - epsilon
    reach = lowest - epsilon
    return torch.where(reach >= 0, reach * (1 - ROUNDING), reach * (1 + ROUNDING))


def _full_search(queries: torch.Tensor, train: torch.Tensor, k: int):
    return (queries @ train.T).topk(k, dim=1)


def _top_of_pairs(queries: torch.Tensor, train: torch.Tensor, row: torch.Tensor, column: torch.Tensor, k: int):
    """Top k, largest first, of the float32 products ``queries[row] . train[column]``
    per query, computing only those products; pairs sorted by (row, column)."""
    counts = torch.bincount(row, minlength=len(queries))
    starts = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta state"
        pattern = torch.sparse_csr_tensor(
            starts, column, torch.zeros(len(column)), size=(len(queries), len(train)), check_invariants=False
        )
        products = torch.sparse.sampled_addmm(pattern, queries, train.T, beta=0.0).values()
    place = torch.arange(len(row)) - starts[row]
    width = max(k, int(counts.max()))
    similarity = torch.full((len(queries), width), -torch.inf)
    columns = torch.zeros((len(queries), width), dtype=torch.long)
    similarity[row, place], columns[row, place] = products, column
    similarity, picked = similarity.topk(k, dim=1)
    return similarity, columns.gather(1, picked)


def distance_weighted_vote(distance: torch.Tensor, neighbour_codes: torch.Tensor, n_classes: int) -> np.ndarray:
    exact = distance == 0
    weights = torch.where(exact.any(dim=1, keepdim=True), exact.double(), 1.0 / distance.clamp(min=1e-300))
    votes = torch.zeros(len(distance), n_classes, dtype=torch.float64)
    votes.scatter_add_(1, neighbour_codes, weights)
    return votes.argmax(dim=1).numpy()


def knn_accuracy(train_x, train_y, test_x, test_y, k: int) -> float:
    return float(np.mean(knn_predictions(train_x, train_y, test_x, [k])[k] == test_y))


def linear_probe(train_x, train_y, test_x, max_iter: int = 1000, device="cpu") -> tuple[np.ndarray, Convergence]:
    """Test-set predictions of the standardised logistic-regression probe (C=1; see
    ``selfsup.probe``), and how its solver ended."""
    probe = fit_linear_probe(train_x, train_y, max_iter=max_iter, device=device)
    if not probe.convergence.converged:
        logger.warning(
            "linear probe stopped at evaluation.linear_max_iter=%d with max |gradient| %.2e (> %.0e); raise it",
            max_iter,
            probe.convergence.max_gradient,
            TOLERANCE,
        )
    return probe.predict(test_x), probe.convergence


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy after the best one-to-one matching of clusters to classes (Hungarian)."""
    classes, true_codes = np.unique(y_true, return_inverse=True)
    clusters, pred_codes = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(counts, (pred_codes, true_codes), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(y_true))


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
    device="cpu",
) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Every protocol's test-set predictions, keyed like the metrics row (``kmeans`` holds the
    cluster of each test row, k = number of train classes), and each probe's convergence."""
    too_large = [k for k in knn_k if k > len(train_x)]
    if too_large:
        raise ParameterError(
            f"evaluation.knn_k={too_large} exceeds the {len(train_x)} labelled training images; lower it"
        )
    subsets = {fraction: label_fraction(train_y, fraction, seed) for fraction in label_fractions}
    predictions = {f"knn_k{k}": predicted for k, predicted in knn_predictions(train_x, train_y, test_x, knn_k).items()}
    probes = {"linear": (train_x, train_y)}
    probes.update({fraction_key(f): (train_x[subset], train_y[subset]) for f, subset in subsets.items()})
    convergence = {}
    for key, (x, y) in probes.items():
        predictions[key], ended = linear_probe(x, y, test_x, max_iter, device)
        convergence[key] = ended.as_dict()
    predictions["kmeans"] = kmeans_labels(test_x, len(np.unique(train_y)))
    return predictions, convergence


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
    predictions, _ = protocol_predictions(train_x, train_y, test_x, knn_k, label_fractions, max_iter, seed)
    return score_predictions(predictions, test_y)


def evaluate_unlabelled(test_x: np.ndarray, n_clusters: int) -> dict[str, float]:
    """What needs no labels: how well k-means separates the test features (cosine silhouette)."""
    if test_x.shape[0] <= n_clusters:  # test_x may be sparse (TF-IDF)
        raise ParameterError(
            f"evaluation.n_clusters={n_clusters} needs more than {n_clusters} test images, got {test_x.shape[0]}"
        )
    predicted = kmeans_labels(test_x, n_clusters)
    return {"kmeans_silhouette": float(silhouette_score(test_x, predicted, metric="cosine"))}
