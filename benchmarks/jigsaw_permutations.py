"""Jigsaw's permutation set: selfsup's max-min Hamming selection vs the paper's max-sum.

Noroozi & Favaro (2016, Algorithm 1) pick each next permutation by the largest *sum* of
Hamming distances to those already chosen; selfsup picks the largest *minimum* distance.
Both start from the same random permutation and draw ties at random; the script prints the
smallest and the mean pairwise distance of each 100-permutation set of 3 × 3 tiles as one
JSON line.

    python benchmarks/jigsaw_permutations.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit

from selfsup.methods.jigsaw import PERMUTATION_SEED, hamming_distances, permutation_set

TILES, COUNT = 9, 100


def paper_permutation_set(n_tiles: int, count: int, seed: int = PERMUTATION_SEED) -> np.ndarray:
    """Algorithm 1 of the paper: each next permutation maximises the summed distance to the chosen."""
    rng = np.random.default_rng(seed)
    candidates = np.array(list(itertools.permutations(range(n_tiles))), dtype=np.int8, order="F")
    chosen = [int(rng.integers(len(candidates)))]
    total = hamming_distances(candidates, candidates[chosen[0]]).astype(np.int64)
    for _ in range(count - 1):
        chosen.append(int(rng.choice(np.flatnonzero(total == total.max()))))
        total += hamming_distances(candidates, candidates[chosen[-1]])
    return candidates[chosen].astype(np.int64)


def pairwise(permutations: np.ndarray) -> dict:
    distances = (permutations[:, None, :] != permutations[None, :, :]).sum(axis=-1)
    pairs = distances[np.triu_indices(len(permutations), k=1)]
    return {"min_distance": int(pairs.min()), "mean_distance": round(float(pairs.mean()), 3)}


def main() -> None:
    emit(
        {
            "benchmark": "jigsaw_permutations",
            "tiles": TILES,
            "permutations": COUNT,
            "selfsup_max_min": pairwise(permutation_set(TILES, COUNT)),
            "paper_max_sum": pairwise(paper_permutation_set(TILES, COUNT)),
        }
    )


if __name__ == "__main__":
    main()
