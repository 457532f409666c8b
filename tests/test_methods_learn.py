"""Each contrastive or distillation method learns on the digits default: its kNN20 beats a random-init encoder's.

Run with ``pytest -m slow tests/test_methods_learn.py``. Every run uses the same
small CNN, view cache, budget and seed; heads are narrowed so each finishes in
well under a minute on two CPU cores.
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

TRAINING = {
    "epochs": 30, "batch_size": 64, "learning_rate": 0.002, "warmup_epochs": 1, "small_cnn": {"widths": [16, 32, 64]},
}
# Per method: narrow heads, and the few training settings that differ.
OVERRIDES = {
    "moco_v2": {"moco_v2": {"queue_size": 512, "hidden_dim": 128, "projection_dim": 64}},
    "moco_v3": {"moco_v3": {"hidden_dim": 128, "projection_dim": 64}},
    "byol": {"byol": {"hidden_dim": 128, "projection_dim": 64}},
    "simsiam": {"learning_rate": 0.005, "simsiam": {"projection_dim": 256, "predictor_hidden_dim": 64}},
    "barlow_twins": {"barlow_twins": {"hidden_dim": 256, "projection_dim": 256}},
    "vicreg": {"vicreg": {"hidden_dim": 256, "projection_dim": 256}},
    "dino": {"dino": {"hidden_dim": 128, "bottleneck_dim": 64, "out_dim": 256}},
    "swav": {"swav": {"hidden_dim": 128, "projection_dim": 64}},
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


@pytest.mark.parametrize("name", list(OVERRIDES))
def test_method_beats_random_init_on_digits(name, digits):
    images, labels, is_train, views = digits
    params = PretrainingParams(method=name, **{**TRAINING, **OVERRIDES[name]})
    result = pretrain(views, params)
    ssl = knn20(encoder_from_checkpoint(result.checkpoint), images, labels, is_train)
    random_init = knn20(random_encoder(result.checkpoint["config"], params.seed), images, labels, is_train)
    print(f"{name}: kNN20 SSL {ssl:.3f} vs random init {random_init:.3f} ({result.summary['wall_time_s']:.0f} s)")
    assert ssl > random_init + 0.02
