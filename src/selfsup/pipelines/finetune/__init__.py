"""The finetune pipeline."""

from selfsup.pipelines.finetune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
