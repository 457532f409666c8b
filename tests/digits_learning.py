"""Shared by the slow "learns" tests: the digits view cache and the SSL-vs-random-init kNN20 check."""

from __future__ import annotations

import numpy as np
import pytest

from selfsup.config import AugmentationParams, IngestionParams, PretrainingParams
from selfsup.data import load_image_set
from selfsup.data.view_cache import ensure_cache
from selfsup.encoder_checkpoint import encoder_from_checkpoint, random_encoder
from selfsup.evaluate import knn_accuracy
from selfsup.features import embed
from selfsup.train import pretrain


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    image_set = load_image_set(IngestionParams())
    split = image_set.index["split"].to_numpy()
    labels = image_set.index["label"].to_numpy(np.int64)
    train_positions = np.flatnonzero(split == "train")
    cache = ensure_cache(
        tmp_path_factory.mktemp("views"),
        image_set.images,
        train_positions,
        AugmentationParams(views_per_image=4, crop_scale=(0.5, 1.0)),
    )
    return image_set.images, labels, split == "train", cache.bind(image_set.images)


def knn20(encoder, images, labels, is_train) -> float:
    features = embed(encoder, images)
    return knn_accuracy(features[is_train], labels[is_train], features[~is_train], labels[~is_train], k=20)


def assert_beats_random_init(params: PretrainingParams, digits) -> None:
    images, labels, is_train, views = digits
    result = pretrain(views, params)
    ssl = knn20(encoder_from_checkpoint(result.checkpoint), images, labels, is_train)
    random_init = knn20(random_encoder(result.checkpoint["config"], params.seed), images, labels, is_train)
    print(
        f"{params.method}: kNN20 SSL {ssl:.3f} vs random init {random_init:.3f} ({result.summary['wall_time_s']:.0f} s)"
    )
    assert ssl > random_init + 0.02
