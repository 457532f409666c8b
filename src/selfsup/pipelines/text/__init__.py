"""The text pipeline: ingestion, WordPiece, pretraining, feature extraction, evaluation and the report, for texts."""

from selfsup.pipelines.text.pipeline import create_pipeline

__all__ = ["create_pipeline"]
