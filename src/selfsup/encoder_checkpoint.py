"""The encoder checkpoint: what pretraining hands on, and how inference rebuilds the encoder from it.

A checkpoint is a dict ``{"format", "config", "state_dict", "training"}`` (the
pretraining pipeline adds ``"embedding_size"``). ``config`` is the encoder's
architecture plus its input statistics, which is all ``build_encoder`` needs;
``training`` is the run's summary.
"""

from __future__ import annotations

import torch

from selfsup.config import PretrainingParams
from selfsup.data.training_views import TrainingViews
from selfsup.models import Encoder, build_encoder

CHECKPOINT_FORMAT = "selfsup.encoder/1"


def encoder_config(views: TrainingViews, params: PretrainingParams) -> dict:
    """The config that rebuilds the encoder: architecture plus the input statistics of the views."""
    channels, height, width = views.view_shape
    mean, std = views.channel_stats()
    return {
        "backbone": params.backbone,
        "in_channels": channels,
        "image_size": [height, width],
        "backbone_params": getattr(params, params.backbone).model_dump(mode="json"),
        "mean": mean,
        "std": std,
    }


def random_encoder(config: dict, seed: int) -> Encoder:
    """A randomly initialised encoder of the given architecture, reproducible by seed."""
    torch.manual_seed(seed)
    return build_encoder(config)


def encoder_checkpoint(encoder: Encoder, config: dict, training: dict) -> dict:
    """The checkpoint of a trained encoder (moved to the CPU), with the summary of its training."""
    encoder = encoder.to("cpu", memory_format=torch.contiguous_format)
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config,
        "state_dict": {name: t.detach().clone() for name, t in encoder.state_dict().items()},
        "training": training,
    }


def encoder_from_checkpoint(checkpoint: dict) -> Encoder:
    """The trained encoder of a checkpoint, in eval mode on the CPU."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"not a selfsup encoder checkpoint: format {checkpoint.get('format')!r}, expected {CHECKPOINT_FORMAT!r}"
        )
    encoder = build_encoder(checkpoint["config"])
    encoder.load_state_dict(checkpoint["state_dict"])
    return encoder.eval()
