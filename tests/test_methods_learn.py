"""Each contrastive or distillation method learns on the digits default: its kNN20 beats a random-init encoder's.

Run with ``pytest -m slow tests/test_methods_learn.py``. Every run uses the same
small CNN, view cache, budget and seed; heads are narrowed so each finishes in
well under a minute on two CPU cores.
"""

from __future__ import annotations

import pytest

from selfsup.config import PretrainingParams
from tests.digits_learning import assert_beats_random_init, digits  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

TRAINING = {
    "epochs": 30,
    "batch_size": 64,
    "learning_rate": 0.002,
    "warmup_epochs": 1,
    "small_cnn": {"widths": [16, 32, 64]},
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


@pytest.mark.parametrize("name", list(OVERRIDES))
def test_method_beats_random_init_on_digits(name, digits):
    assert_beats_random_init(PretrainingParams(method=name, **{**TRAINING, **OVERRIDES[name]}), digits)
