"""The reporting pipeline."""

from selfsup.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
