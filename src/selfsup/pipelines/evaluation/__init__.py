"""The evaluation pipeline."""

from selfsup.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
