"""Detection: FCOS on the encoder of ``detection.checkpoint`` and on its baselines, frozen and fine-tuned."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selfsup.config import AugmentationParams, DetectionParams, validate
from selfsup.detection.stage import detection_stage
from selfsup.devices import resolve_device
from selfsup.embedding import load_checkpoint
from selfsup.report.detection import boxes_figure, detection_html


def compare_detectors(
    images: np.ndarray, image_index: pd.DataFrame, parameters: dict, augmentation: dict
) -> tuple[dict, str]:
    """``detection_metrics.json`` (joined into metrics.json by record_run) and ``detection_report.html``."""
    params = validate(DetectionParams, "detection", parameters)
    metrics, test, examples = detection_stage(
        load_checkpoint(params.checkpoint),
        images,
        image_index,
        params,
        validate(AugmentationParams, "augmentation", augmentation),
        resolve_device(params.device),
    )
    return metrics, detection_html(metrics, boxes_figure(test, examples, params.figure_canvases))
