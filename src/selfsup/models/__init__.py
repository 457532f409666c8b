"""Backbones, the encoder wrapper that owns input normalisation, and heads."""

from selfsup.models.backbones import BACKBONES, Encoder, build_encoder, has_spatial_maps
from selfsup.models.heads import ProjectionHead, float32_linear

__all__ = ["BACKBONES", "Encoder", "ProjectionHead", "build_encoder", "float32_linear", "has_spatial_maps"]
