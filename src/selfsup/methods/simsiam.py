"""SimSiam (Chen & He, 2021): a predictor and a stop-gradient, no negatives and no momentum encoder."""

from __future__ import annotations

import torch

from selfsup.config import SimSiamParams
from selfsup.losses import negative_cosine
from selfsup.methods.base import Method
from selfsup.models import Encoder, ProjectionHead


class SimSiam(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: SimSiamParams):
        super().__init__(encoder)
        self.projector = ProjectionHead(
            encoder.feature_dim, params.projection_dim, params.projection_dim, num_layers=3, output_norm=True
        )
        self.predictor = ProjectionHead(params.projection_dim, params.predictor_hidden_dim, params.projection_dim)

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        z1, z2 = self.projector(self.encoder(torch.cat(inputs))).chunk(2)
        p1, p2 = self.predictor(torch.cat([z1, z2])).chunk(2)
        loss = (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2
        return loss, {}
