"""SwAV (Caron et al., 2020): swapped prediction of equal-partition prototype codes.

With multi-crop (``local_crops``) only the two global views get codes, and every other
view predicts each; the prototypes get no update in the first ``freeze_prototypes_epochs``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.config import SwAVParams
from selfsup.data.training_views import Batch, every_view
from selfsup.losses import multi_crop_swapped_prediction, sinkhorn
from selfsup.methods.base import Method, drop_gradients, local_crops_of
from selfsup.models import Encoder, ProjectionHead, float32_linear


class SwAV(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: SwAVParams):
        super().__init__(encoder)
        self.params = params
        self.projector = ProjectionHead(encoder.feature_dim, params.hidden_dim, params.projection_dim)
        self.prototypes = nn.Linear(params.projection_dim, params.n_prototypes, bias=False)
        self.normalise_prototypes()
        self.local_crops = local_crops_of(params)

    @torch.no_grad()
    def normalise_prototypes(self) -> None:
        """Project every prototype back onto the unit sphere, so scores are cosines."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def views(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """The two global views, then the local views."""
        return every_view(batch)

    def loss(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        features = self.encoder(torch.cat(inputs[:2]))
        if len(inputs) > 2:  # local views: another size, their own encoder pass
            features = torch.cat([features, self.encoder(torch.cat(inputs[2:]))])
        z = F.normalize(self.projector(features), dim=1)
        scores = float32_linear(z, self.prototypes.weight).split(len(inputs[0]))  # cosines / 0.1: not in bf16
        p = self.params
        codes = [sinkhorn(s, p.sinkhorn_epsilon, p.sinkhorn_iterations) for s in scores[:2]]
        return multi_crop_swapped_prediction(scores, codes, p.temperature), {}

    def before_optimizer_step(self, epoch: int) -> None:
        if epoch < self.params.freeze_prototypes_epochs:
            drop_gradients(self.prototypes.parameters())

    def on_step_end(self, step: int, total_steps: int) -> None:
        # Frozen, they were not updated and are still unit vectors; normalising again would move them by rounding.
        if self.prototypes.weight.grad is not None:
            self.normalise_prototypes()
