"""Each generative or predictive method learns on the digits default: its kNN20 beats a random-init encoder's.

Run with ``pytest -m slow tests/test_methods_learn_generative.py``. Every run uses
the same view cache and seed; MAE and BEiT train a 2-block ViT-Tiny with 2×2
patches, the others the small CNN of the contrastive learn tests, so each
finishes within about a minute on two CPU cores.
"""

from __future__ import annotations

import pytest

from selfsup.config import PretrainingParams
from tests.digits_learning import assert_beats_random_init, digits  # noqa: F401 (a fixture)

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


@pytest.mark.parametrize("name", list(CASES))
def test_method_beats_random_init_on_digits(name, digits):
    assert_beats_random_init(PretrainingParams(method=name, **{**TRAINING, **CASES[name]}), digits)
