"""The feature_extraction pipeline."""

from selfsup.pipelines.feature_extraction.pipeline import create_pipeline

__all__ = ["create_pipeline"]
