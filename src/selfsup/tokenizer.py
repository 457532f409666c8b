"""Visual tokens for BEiT, learned from the data: a k-means codebook over image patches.

BEiT predicts, for each hidden patch, the discrete token that a pretrained
tokenizer gives it. No pretrained tokenizer is downloaded here: the codebook is
fitted by k-means on pixel patches ([0, 1] values, the ViT's patch size)
sampled from the training views, and a patch's token is the index of its
nearest codeword in Euclidean distance (``selfsup.methods.beit.tokenize``). A
codebook is a float32 array (K, C, p, p), so it carries its own channel count
and patch size.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.cluster import KMeans

from selfsup.config import PretrainingParams
from selfsup.data.training_views import TrainingViews
from selfsup.errors import ParameterError
from selfsup.methods import METHODS
from selfsup.methods.masked_image import vit_required

logger = logging.getLogger(__name__)


def tokenizer_codebook(views: TrainingViews, params: PretrainingParams) -> np.ndarray:
    """The visual-token codebook of a method that uses one (BEiT); an empty one, at no cost, otherwise."""
    if not METHODS[params.method].uses_codebook:
        return empty_codebook(views.view_shape[0])
    patch_size = getattr(getattr(params, params.backbone), "patch_size", None)
    if patch_size is None:
        raise vit_required(params.method, params.backbone)
    tokenizer = getattr(params, params.method)
    logger.info("Fitting a %d-word k-means tokenizer on %d×%d patches", tokenizer.codebook_size, patch_size, patch_size)
    return fit_codebook(
        views.views_for_patches(tokenizer.tokenizer_patches, patch_size, params.seed),
        patch_size,
        tokenizer.codebook_size,
        tokenizer.tokenizer_patches,
        tokenizer.tokenizer_iterations,
        params.seed,
    )


def sample_patches(views: np.ndarray, patch_size: int, count: int, seed: int) -> np.ndarray:
    """(M, C·p·p) float32 [0, 1] patches of the grid cells of random views; M = min(count, all cells)."""
    n, k, c, h, w = views.shape
    rows, cols = h // patch_size, w // patch_size
    cells = n * k * rows * cols
    picks = np.sort(np.random.default_rng(seed).choice(cells, size=min(count, cells), replace=False))
    image, cell = np.divmod(picks, rows * cols)
    row, col = np.divmod(cell, cols)
    offsets = np.arange(patch_size)
    y = (row[:, None] * patch_size + offsets)[:, None, :, None]
    x = (col[:, None] * patch_size + offsets)[:, None, None, :]
    flat = views.reshape(n * k, c, h, w)
    patches = flat[image[:, None, None, None], np.arange(c)[None, :, None, None], y, x]
    return patches.reshape(len(picks), -1).astype(np.float32) / 255.0


def fit_codebook(
    views: np.ndarray, patch_size: int, size: int, max_patches: int, iterations: int, seed: int
) -> np.ndarray:
    """A (size, C, p, p) k-means codebook of patches of the uint8 views (N, K, C, H, W)."""
    patches = sample_patches(views, patch_size, max_patches, seed)
    if len(patches) < size:
        raise ParameterError(
            f"the view cache has {len(patches)} patches of {patch_size}×{patch_size} pixels, fewer than "
            f"pretraining.beit.codebook_size={size}; lower pretraining.beit.codebook_size"
        )
    kmeans = KMeans(n_clusters=size, n_init=1, max_iter=iterations, random_state=seed).fit(patches)
    c = views.shape[2]
    return kmeans.cluster_centers_.astype(np.float32).reshape(size, c, patch_size, patch_size)


def empty_codebook(channels: int) -> np.ndarray:
    """The tokenizer of methods that need none: no codewords."""
    return np.zeros((0, channels, 0, 0), dtype=np.float32)
