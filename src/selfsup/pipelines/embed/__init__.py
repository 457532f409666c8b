"""The embed pipeline: features of a folder of images (not part of ``__default__``)."""

from selfsup.pipelines.embed.pipeline import create_pipeline

__all__ = ["create_pipeline"]
