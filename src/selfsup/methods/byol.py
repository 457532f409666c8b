"""BYOL (Grill et al., 2020): an online network predicts a slowly moving target network."""

from __future__ import annotations

import torch

from selfsup.config import BYOLParams
from selfsup.losses import normalized_mse
from selfsup.methods.base import Method
from selfsup.methods.momentum import cosine_momentum, ema_update, momentum_copy
from selfsup.models import Encoder, ProjectionHead


class BYOL(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: BYOLParams):
        super().__init__(encoder)
        self.base_momentum = params.momentum
        self.projector = ProjectionHead(encoder.feature_dim, params.hidden_dim, params.projection_dim)
        self.predictor = ProjectionHead(params.projection_dim, params.hidden_dim, params.projection_dim)
        self.target_encoder = momentum_copy(encoder)
        self.target_projector = momentum_copy(self.projector)

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        both = torch.cat(inputs)
        p1, p2 = self.predictor(self.projector(self.encoder(both))).chunk(2)
        with torch.no_grad():
            z1, z2 = self.target_projector(self.target_encoder(both)).chunk(2)
        loss = normalized_mse(p1, z2) + normalized_mse(p2, z1)
        return loss, {}

    def on_step_end(self, step: int, total_steps: int) -> None:
        momentum = cosine_momentum(self.base_momentum, step, total_steps)
        ema_update(self.target_encoder, self.encoder, momentum)
        ema_update(self.target_projector, self.projector, momentum)
