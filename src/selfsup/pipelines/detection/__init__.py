"""The detection pipeline: detectors on the trained encoder and its baselines (not part of ``__default__``)."""

from selfsup.pipelines.detection.pipeline import create_pipeline

__all__ = ["create_pipeline"]
