"""MoCo v3 (Chen, Xie & He, 2021): a predictor on the query side, in-batch negatives from a momentum encoder."""

from __future__ import annotations

import torch

from selfsup.config import MoCoV3Params
from selfsup.losses import info_nce
from selfsup.methods.base import Method
from selfsup.methods.momentum import cosine_momentum, ema_update, momentum_copy
from selfsup.models import Encoder, ProjectionHead


class MoCoV3(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: MoCoV3Params):
        super().__init__(encoder)
        self.temperature = params.temperature
        self.base_momentum = params.momentum
        self.projector = ProjectionHead(
            encoder.feature_dim, params.hidden_dim, params.projection_dim, num_layers=3, output_norm=True
        )
        self.predictor = ProjectionHead(params.projection_dim, params.hidden_dim, params.projection_dim)
        self.momentum_encoder = momentum_copy(encoder)
        self.momentum_projector = momentum_copy(self.projector)

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        both = torch.cat(inputs)
        q1, q2 = self.predictor(self.projector(self.encoder(both))).chunk(2)
        with torch.no_grad():
            k1, k2 = self.momentum_projector(self.momentum_encoder(both)).chunk(2)
        # Algorithm 1 of the paper scales each term by 2τ, which keeps gradients comparable across τ.
        loss = 2 * self.temperature * (info_nce(q1, k2, self.temperature) + info_nce(q2, k1, self.temperature))
        return loss, {}

    def on_step_end(self, step: int, total_steps: int) -> None:
        momentum = cosine_momentum(self.base_momentum, step, total_steps)
        ema_update(self.momentum_encoder, self.encoder, momentum)
        ema_update(self.momentum_projector, self.projector, momentum)
