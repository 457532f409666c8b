"""Ingestion: read a dataset into the canonical uint8 store and its index."""

from __future__ import annotations

import logging
from contextlib import nullcontext

import numpy as np
import pandas as pd

from selfsup.config import IngestionParams, validate
from selfsup.data import content_hash, load_image_set
from selfsup.data.store import ScratchStore, allocate_in_memory

logger = logging.getLogger(__name__)


def ingest(parameters: dict) -> tuple[np.ndarray, pd.DataFrame, dict]:
    params = validate(IngestionParams, "ingestion", parameters)
    with ScratchStore(params.scratch_dir) if params.scratch_dir else nullcontext(allocate_in_memory) as allocate:
        image_set = load_image_set(params, allocate)
    images, index = image_set.images, image_set.index
    summary = {
        "dataset": params.dataset,
        "images": len(images),
        "shape": list(images.shape[1:]),
        "train": int((index["split"] == "train").sum()),
        "test": int((index["split"] == "test").sum()),
        "labelled": int(index["label"].notna().sum()),
        "classes": int(index["label"].nunique()),
        "skipped": len(image_set.skipped),
        "skipped_files": [f"{path}: {reason}" for path, reason in image_set.skipped],
        "data_hash": content_hash(images),
    }
    logger.info("Ingested %(images)d images of shape %(shape)s (%(train)d train, %(test)d test)", summary)
    return images, index, summary
