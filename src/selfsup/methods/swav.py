"""SwAV (Caron et al., 2020): swapped prediction of equal-partition prototype codes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.config import SwAVParams
from selfsup.losses import sinkhorn, swapped_prediction
from selfsup.methods.base import Method
from selfsup.models import Encoder, ProjectionHead, float32_linear


class SwAV(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: SwAVParams):
        super().__init__(encoder)
        self.params = params
        self.projector = ProjectionHead(encoder.feature_dim, params.hidden_dim, params.projection_dim)
        self.prototypes = nn.Linear(params.projection_dim, params.n_prototypes, bias=False)
        self.normalise_prototypes()

    @torch.no_grad()
    def normalise_prototypes(self) -> None:
        """Project every prototype back onto the unit sphere, so scores are cosines."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        z = F.normalize(self.projector(self.encoder(torch.cat(inputs))), dim=1)
        scores1, scores2 = float32_linear(z, self.prototypes.weight).chunk(2)  # cosines / 0.1: not in bf16
        p = self.params
        codes1 = sinkhorn(scores1, p.sinkhorn_epsilon, p.sinkhorn_iterations)
        codes2 = sinkhorn(scores2, p.sinkhorn_epsilon, p.sinkhorn_iterations)
        loss = swapped_prediction(scores1, scores2, codes1, codes2, p.temperature)
        return loss, {}

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.normalise_prototypes()
