"""Each generative or predictive method learns on the digits default: its kNN20 beats a random-init encoder's.

Run with ``pytest -m slow tests/test_methods_learn_generative.py``. Every run uses
the same view cache and seed; MAE and BEiT train a 2-block ViT-Tiny with 2×2
patches, the others the small CNN of the contrastive learn tests, so each
finishes within about a minute on two CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from selfsup.config import AugmentationParams, IngestionParams, PretrainingParams
from selfsup.data import load_image_set
from selfsup.data.view_cache import ensure_cache
from selfsup.evaluate import knn_accuracy
from selfsup.features import embed
from selfsup.train import encoder_from_checkpoint, pretrain, random_encoder

pytestmark = pytest.mark.slow

SMALL_VIT = {"backbone": "vit_tiny", "vit_tiny": {"depth": 2, "patch_size": 2}}
SMALL_CNN = {"backbone": "small_cnn", "small_cnn": {"widths": [16, 32, 64]}}
TRAINING = {"batch_size": 64, "warmup_epochs": 1}
# Per method: backbone, epochs and the few settings that differ from the defaults.
CASES = {
    "mae": {**SMALL_VIT, "epochs": 8},
    "beit": {**SMALL_VIT, "epochs": 20, "beit": {"codebook_size": 32}},
    "denoising_ae": {**SMALL_CNN, "epochs": 30, "learning_rate": 0.003},
    "rotnet": {**SMALL_CNN, "epochs": 10},
    "jigsaw": {**SMALL_CNN, "epochs": 15, "learning_rate": 0.002, "jigsaw": {"grid": 2, "num_permutations": 24}},
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    image_set = load_image_set(IngestionParams())
    split = image_set.index["split"].to_numpy()
    labels = image_set.index["label"].to_numpy(np.int64)
    train_positions = np.flatnonzero(split == "train")
    cache = ensure_cache(
        tmp_path_factory.mktemp("views"), image_set.images, train_positions, AugmentationParams(views_per_image=4)
    )
    return image_set.images, labels, split == "train", cache.views


def knn20(encoder, images, labels, is_train) -> float:
    features = embed(encoder, images)
    return knn_accuracy(features[is_train], labels[is_train], features[~is_train], labels[~is_train], k=20)


@pytest.mark.parametrize("name", list(CASES))
def test_method_beats_random_init_on_digits(name, digits):
    images, labels, is_train, views = digits
    params = PretrainingParams(method=name, **{**TRAINING, **CASES[name]})
    result = pretrain(views, params)
    ssl = knn20(encoder_from_checkpoint(result.checkpoint), images, labels, is_train)
    random_init = knn20(random_encoder(result.checkpoint["config"], params.seed), images, labels, is_train)
    print(f"{name}: kNN20 SSL {ssl:.3f} vs random init {random_init:.3f} ({result.summary['wall_time_s']:.0f} s)")
    assert ssl > random_init + 0.02
