"""The key of a set of training views: a hash of the images, the training rows and the augmentation.

The view cache and the on-the-fly views both name their data by it (a cache is
reused when its key matches; checkpoints are keyed by it), so that one set of
images and parameters has one key whichever way its views are served.
"""

from __future__ import annotations

import numpy as np

from selfsup.augment import AUGMENT_VERSION
from selfsup.config import AugmentationParams
from selfsup.data.store import content_hash


def cache_key(images: np.ndarray, positions: np.ndarray, params: AugmentationParams) -> str:
    return content_hash(
        images,
        content_hash(np.asarray(positions, dtype=np.int64)),
        f"augment-v{AUGMENT_VERSION}",
        params.model_dump_json(exclude={"mode"}),  # the views do not depend on how they are served
    )
