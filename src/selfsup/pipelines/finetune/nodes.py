"""Fine-tuning: the trained and the random-init encoder, each with a linear head, on a few labels."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from selfsup.config import AugmentationParams, EvaluationParams, FinetuneParams, validate
from selfsup.devices import resolve_device
from selfsup.encoder_checkpoint import encoder_from_checkpoint, random_encoder
from selfsup.finetune import finetune_protocol

logger = logging.getLogger(__name__)


def finetune_encoders(
    encoder: dict,
    images: np.ndarray,
    image_index: pd.DataFrame,
    parameters: dict,
    augmentation: dict,
    evaluation: dict,
    seed: int,
) -> dict:
    """``finetune_<p>pct`` of the ``ssl`` and ``random_init`` rows, and how each run went
    (``finetune_runs``); nothing when ``finetune.enabled`` is false or the images have no labels."""
    params = validate(FinetuneParams, "finetune", parameters)
    if not params.enabled:
        logger.info("finetune.enabled is false: no fine-tuning")
        return {}
    labelled = image_index["label"].notna().to_numpy()
    if not labelled.any():
        logger.info("No labels: no fine-tuning")
        return {}
    protocol = validate(EvaluationParams, "evaluation", evaluation)
    split = image_index["split"].to_numpy()
    train, test = np.flatnonzero(labelled & (split == "train")), np.flatnonzero(labelled & (split == "test"))
    labels = image_index["label"].to_numpy(dtype=np.float64, na_value=-1).astype(np.int64)
    encoders = {
        "ssl": (encoder_from_checkpoint(encoder), True),
        "random_init": (random_encoder(encoder["config"], seed), False),
    }
    return finetune_protocol(
        encoders,
        images,
        train,
        labels[train],
        test,
        labels[test],
        protocol.label_fractions,
        protocol.seed,
        params,
        validate(AugmentationParams, "augmentation", augmentation),
        resolve_device(params.device),
    )
