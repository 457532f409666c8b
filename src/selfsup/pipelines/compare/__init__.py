"""The compare pipeline: several saved runs' metrics side by side (not part of ``__default__``)."""

from selfsup.pipelines.compare.pipeline import create_pipeline

__all__ = ["create_pipeline"]
