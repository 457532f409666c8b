"""SimCLR: two views, an MLP projection head and the NT-Xent loss.

With ``rotation_weight`` above 0 it is E-SimCLR (Dangovski et al., 2022, "Equivariant
Contrastive Learning"): besides the invariance NT-Xent asks for, the encoder must tell
which of four rotations was applied to an image, and that term, weighted, is added to
the loss. As in the paper, the rotated images are small (the first view resized by
``rotation_scale``, the paper's half resolution) so that the four rotations cost about
one more view, and they go through the encoder in their own forward pass (their own
BatchNorm statistics) into their own MLP head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.config import SimCLRParams
from selfsup.losses import nt_xent
from selfsup.methods.base import Method
from selfsup.methods.rotnet import N_ROTATIONS, rotation_loss, rotations, square_size
from selfsup.models import Encoder, ProjectionHead


class SimCLR(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: SimCLRParams):
        super().__init__(encoder)
        self.temperature = params.temperature
        self.projector = ProjectionHead(encoder.feature_dim, params.hidden_dim, params.projection_dim)
        self.rotation_weight = params.rotation_weight
        if self.rotation_weight > 0:
            side = square_size(encoder, "pretraining.simclr.rotation_weight > 0")
            self.rotation_size = max(1, round(side * params.rotation_scale))
            self.rotation_head = ProjectionHead(encoder.feature_dim, params.hidden_dim, N_ROTATIONS)

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x1, x2 = inputs
        # One forward pass over both views keeps BatchNorm statistics shared, as in the paper.
        z = self.projector(self.encoder(torch.cat([x1, x2])))
        z1, z2 = z.chunk(2)
        loss = nt_xent(z1, z2, self.temperature)
        if self.rotation_weight == 0:
            return loss, {}
        small = F.interpolate(x1, size=self.rotation_size, mode="area") if self.rotation_size != x1.shape[-1] else x1
        images, labels = rotations(small)
        rotation, accuracy = rotation_loss(self.rotation_head(self.encoder(images)), labels)
        logs = {"rotation_loss": float(rotation.detach()), "rotation_accuracy": accuracy}
        return loss + self.rotation_weight * rotation, logs
