import numpy as np
import torch

from selfsup.features import embed
from selfsup.models import build_encoder


def small_encoder():
    torch.manual_seed(0)
    return build_encoder({
        "backbone": "small_cnn", "in_channels": 1, "image_size": [8, 8],
        "backbone_params": {"widths": [4, 8]}, "mean": [0.5], "std": [0.25],
    })


def test_features_are_unit_length_by_default_and_raw_on_request():
    images = np.random.default_rng(0).integers(0, 256, (10, 1, 8, 8), dtype=np.uint8)
    encoder = small_encoder()
    unit = embed(encoder, images, batch_size=4)
    raw = embed(encoder, images, batch_size=4, normalize=False)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5)
    with torch.inference_mode():
        direct = encoder.eval()(torch.from_numpy(images).float() / 255).numpy()
    np.testing.assert_allclose(raw, direct, rtol=1e-4, atol=1e-6)
