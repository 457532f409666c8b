"""Barlow Twins (Zbontar et al., 2021): the cross-correlation of the two views' embeddings driven to identity."""

from __future__ import annotations

import torch

from selfsup.config import BarlowTwinsParams
from selfsup.losses import barlow_twins
from selfsup.methods.base import Method
from selfsup.models import Encoder, ProjectionHead


class BarlowTwins(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: BarlowTwinsParams):
        super().__init__(encoder)
        self.projector = ProjectionHead(encoder.feature_dim, params.hidden_dim, params.projection_dim, num_layers=3)
        # 1/d (Tsai et al., 2021) balances the d diagonal terms against the d(d − 1) off-diagonal ones.
        self.off_diagonal_weight = (
            params.off_diagonal_weight if params.off_diagonal_weight is not None else 1.0 / params.projection_dim
        )

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        z1, z2 = self.projector(self.encoder(torch.cat(inputs))).chunk(2)
        loss = barlow_twins(z1, z2, self.off_diagonal_weight)
        return loss, {}
