"""SimCLR: two views, an MLP projection head and the NT-Xent loss."""

from __future__ import annotations

import torch

from selfsup.config import SimCLRParams
from selfsup.losses import nt_xent
from selfsup.methods.base import Method
from selfsup.models import Encoder, ProjectionHead


class SimCLR(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: SimCLRParams):
        super().__init__(encoder)
        self.temperature = params.temperature
        self.projector = ProjectionHead(encoder.feature_dim, params.hidden_dim, params.projection_dim)

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x1, x2 = inputs
        # One forward pass over both views keeps BatchNorm statistics shared, as in the paper.
        z = self.projector(self.encoder(torch.cat([x1, x2])))
        z1, z2 = z.chunk(2)
        loss = nt_xent(z1, z2, self.temperature)
        return loss, {}
