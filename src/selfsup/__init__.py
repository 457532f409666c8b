"""selfsup: self-supervised feature learning from unlabeled images.

The library (everything outside ``selfsup.pipelines`` and ``selfsup.datasets``)
works without Kedro::

    from selfsup import embed_images
    features = embed_images("photos/", "data/06_models/encoder.pt")  # DataFrame: id, f000…

    from selfsup import load_encoder, embed
    encoder = load_encoder("data/06_models/encoder.pt")
    features = embed(encoder, images_uint8_nchw)
"""

from pathlib import Path

import torch

from selfsup.embedding import embed_images, load_checkpoint
from selfsup.encoder_checkpoint import encoder_from_checkpoint
from selfsup.features import embed
from selfsup.methods import METHODS

__version__ = "0.1.0"


def load_encoder(path: str | Path) -> torch.nn.Module:
    """Rebuild a trained encoder (eval mode, CPU) from a checkpoint file."""
    return encoder_from_checkpoint(load_checkpoint(path))


__all__ = ["METHODS", "embed", "embed_images", "load_encoder"]
