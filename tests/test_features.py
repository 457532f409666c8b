import subprocess
import sys

import numpy as np
import torch

from selfsup.features import embed
from selfsup.models import build_encoder


def small_encoder():
    torch.manual_seed(0)
    return build_encoder(
        {
            "backbone": "small_cnn",
            "in_channels": 1,
            "image_size": [8, 8],
            "backbone_params": {"widths": [4, 8]},
            "mean": [0.5],
            "std": [0.25],
        }
    )


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


def test_embed_images_resizes_to_the_size_the_pipeline_embedded_at(tmp_path):
    from PIL import Image

    from selfsup import embed_images
    from selfsup.data.images import decode_image
    from selfsup.encoder_checkpoint import CHECKPOINT_FORMAT

    encoder = small_encoder()  # trained on 8×8 views
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "config": encoder.config,
        "state_dict": encoder.state_dict(),
        "embedding_size": [12, 12],  # the stored images the pipeline embedded
    }
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    table = embed_images(tmp_path, checkpoint)
    at_12 = np.stack([decode_image(tmp_path / f"{name}.png", 1, (12, 12)) for name in ("a", "b")])
    np.testing.assert_allclose(table[["f000", "f001"]].to_numpy(), embed(encoder, at_12)[:, :2], rtol=1e-5)


def test_inference_does_not_import_the_trainer():
    """Embedding with a trained encoder needs its checkpoint format, not the pretraining loop."""
    modules = ("selfsup.features", "selfsup.embedding", "selfsup.pipelines.feature_extraction.nodes")
    script = f"import sys\nfor name in {modules!r}: __import__(name)\nprint('selfsup.train' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
