"""Denoising autoencoder (Vincent et al., 2008), with any backbone.

The view is corrupted by gaussian noise and by masking noise (a random fraction
of pixels set to 0), then clipped to [0, 1]; an MLP decoder reconstructs the
clean view, normalised as the encoder sees it, from the encoder's pooled
features. The loss is the mean squared error over all pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from selfsup.config import DenoisingAEParams
from selfsup.methods.base import Method
from selfsup.models import Encoder, ProjectionHead


class DenoisingAE(Method):
    n_views = 1

    def __init__(self, encoder: Encoder, params: DenoisingAEParams):
        super().__init__(encoder)
        self.noise_std = params.noise_std
        self.mask_ratio = params.mask_ratio
        height, width = encoder.config["image_size"]
        self.image_shape = (encoder.config["in_channels"], height, width)
        self.decoder = ProjectionHead(encoder.feature_dim, params.hidden_dim, math.prod(self.image_shape))

    def views(self, batch: torch.Tensor) -> torch.Tensor:
        return batch[:, 0]

    def corrupt(self, images: torch.Tensor) -> torch.Tensor:
        noisy = images + self.noise_std * torch.randn_like(images)
        kept = torch.rand_like(images[:, :1]) >= self.mask_ratio  # one draw per pixel, all channels alike
        return (noisy * kept).clamp(0.0, 1.0)

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        reconstruction = self.decoder(self.encoder(self.corrupt(images))).view(-1, *self.image_shape)
        return F.mse_loss(reconstruction, self.encoder.normalise(images)), {}
