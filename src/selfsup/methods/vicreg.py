"""VICReg (Bardes, Ponce & LeCun, 2022): invariance, variance and covariance regularisation."""

from __future__ import annotations

import torch

from selfsup.config import VICRegParams
from selfsup.losses import vicreg
from selfsup.methods.base import Method
from selfsup.models import Encoder, ProjectionHead


class VICReg(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: VICRegParams):
        super().__init__(encoder)
        self.params = params
        self.expander = ProjectionHead(encoder.feature_dim, params.hidden_dim, params.projection_dim, num_layers=3)

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        z1, z2 = self.expander(self.encoder(torch.cat(inputs))).chunk(2)
        p = self.params
        loss = vicreg(z1, z2, p.invariance_weight, p.variance_weight, p.covariance_weight, gamma=p.gamma, eps=p.eps)
        return loss, {}
