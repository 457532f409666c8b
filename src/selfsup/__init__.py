"""selfsup: self-supervised feature learning from unlabeled images.

The library (everything outside ``selfsup.pipelines`` and ``selfsup.datasets``)
works without Kedro::

    from selfsup import load_encoder, embed
    encoder = load_encoder("data/06_models/encoder.pt")
    features = embed(encoder, images_uint8_nchw)
"""

from pathlib import Path

import torch

from selfsup.features import embed
from selfsup.methods import METHODS
from selfsup.train import encoder_from_checkpoint

__version__ = "0.1.0"


def load_encoder(path: str | Path) -> torch.nn.Module:
    """Rebuild a trained encoder (eval mode, CPU) from a checkpoint file."""
    return encoder_from_checkpoint(torch.load(Path(path), map_location="cpu", weights_only=True))


__all__ = ["METHODS", "embed", "load_encoder"]
