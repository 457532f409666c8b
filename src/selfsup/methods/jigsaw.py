"""Jigsaw puzzles: classify how the tiles of an image were shuffled (Noroozi & Favaro, 2016).

The view is cut into ``grid`` × ``grid`` tiles (the view is resized first to
a multiple of ``grid`` when needed), the tiles are reordered by one of
``num_permutations`` fixed permutations, each tile is resized to the view's
size and encoded by the shared encoder, and an MLP over the concatenated tile
features classifies which permutation it was. The permutation set is chosen
greedily so that each new permutation is as far as possible, in Hamming
distance, from its nearest already chosen one.

Three departures from the paper. Its Algorithm 1 maximises the *sum* of distances to
the chosen permutations, not the minimum: for 100 orders of 3 × 3 tiles both sets have
a mean pairwise distance of 8.1, but the sum lets pairs come within 3 of each other
and the minimum keeps every pair at least 6 apart, so no two classes differ by a swap
or two (``benchmarks/jigsaw_permutations.py``). Measured on 8×8 digits: tiles are
upscaled to the view's size, because tiles encoded at their own 4×4 size gave
features that got worse with training (kNN20 0.89 after 15 epochs against
0.95 upscaled); and tiles have no gaps or jitter, which did not help here.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F

from selfsup.config import JigsawParams
from selfsup.distributed import mean_over_ranks
from selfsup.methods.base import Method
from selfsup.models import Encoder, ProjectionHead

# Enumerate every permutation up to 9 tiles (9! = 362,880); sample candidates beyond.
MAX_ENUMERATED_TILES = 9
SAMPLED_CANDIDATES = 100_000
PERMUTATION_SEED = 0  # the permutation set is part of the task's definition, not of a run


def hamming_distances(candidates: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """Distance of each row of ``candidates`` (M, T) to ``permutation`` (T,)."""
    distances = np.zeros(len(candidates), dtype=np.int8)
    for slot in range(candidates.shape[1]):  # column by column: much faster than a row-wise sum
        distances += candidates[:, slot] != permutation[slot]
    return distances


def permutation_set(n_tiles: int, count: int, seed: int = PERMUTATION_SEED) -> np.ndarray:
    """(count, n_tiles) distinct permutations, greedily maximising the minimum Hamming distance.

    The first is drawn at random; each next one is, among the candidates, one
    whose minimum distance to those already chosen is largest (ties drawn at random).
    """
    rng = np.random.default_rng(seed)
    if n_tiles <= MAX_ENUMERATED_TILES:
        candidates = np.array(list(itertools.permutations(range(n_tiles))), dtype=np.int8, order="F")
    else:
        candidates = np.asfortranarray(
            rng.permuted(np.tile(np.arange(n_tiles, dtype=np.int8), (SAMPLED_CANDIDATES, 1)), axis=1)
        )
    if count > len(candidates):
        raise ValueError(f"only {len(candidates)} candidate orders of {n_tiles} tiles, {count} were asked for")
    chosen = [int(rng.integers(len(candidates)))]
    nearest = hamming_distances(candidates, candidates[chosen[0]])
    for _ in range(count - 1):
        pick = int(rng.choice(np.flatnonzero(nearest == nearest.max())))
        chosen.append(pick)
        nearest = np.minimum(nearest, hamming_distances(candidates, candidates[pick]))
    return candidates[chosen].astype(np.int64)


def cut_tiles(images: torch.Tensor, grid: int) -> torch.Tensor:
    """(B, grid², C, h, w) tiles in row-major order; the image is first resized to (grid·h, grid·w)."""
    b, c, height, width = images.shape
    h, w = math.ceil(height / grid), math.ceil(width / grid)
    if (height, width) != (grid * h, grid * w):
        images = F.interpolate(images, size=(grid * h, grid * w), mode="bilinear", align_corners=False)
    tiles = images.reshape(b, c, grid, h, grid, w).permute(0, 2, 4, 1, 3, 5)
    return tiles.reshape(b, grid * grid, c, h, w)


class Jigsaw(Method):
    n_views = 1

    def __init__(self, encoder: Encoder, params: JigsawParams):
        super().__init__(encoder)
        self.grid = params.grid
        self.tile_size = tuple(encoder.config["image_size"])
        permutations = permutation_set(params.grid**2, params.num_permutations)
        self.register_buffer("permutations", torch.from_numpy(permutations), persistent=False)
        self.head = ProjectionHead(params.grid**2 * encoder.feature_dim, params.hidden_dim, params.num_permutations)

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shuffled tiles (B, grid², C, H, W), where slot i holds tile ``permutation[i]``, and the labels."""
        tiles = cut_tiles(batch[:, 0], self.grid)
        b, t = tiles.shape[:2]
        labels = torch.randint(len(self.permutations), (b,), device=tiles.device)
        shuffled = tiles[torch.arange(b, device=tiles.device).unsqueeze(1), self.permutations[labels]]
        resized = F.interpolate(shuffled.flatten(0, 1), size=self.tile_size, mode="bilinear", align_corners=False)
        return resized.view(b, t, *resized.shape[1:]), labels

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        tiles, labels = inputs
        b, t = tiles.shape[:2]
        features = self.encoder(tiles.flatten(0, 1)).view(b, t * self.feature_dim)
        logits = self.head(features)
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        # the global batch's accuracy (every rank holds an equal share)
        return F.cross_entropy(logits, labels), {"accuracy": float(mean_over_ranks(accuracy))}
