"""RotNet: predict which of four rotations was applied (Gidaris et al., 2018).

Every image of the batch appears in all four rotations (0°, 90°, 180°, 270°
counter-clockwise) in one forward pass, as in the paper; an MLP head over the
encoder's features classifies the rotation with cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.config import RotNetParams
from selfsup.distributed import mean_over_ranks
from selfsup.methods.base import Method
from selfsup.models import Encoder, ProjectionHead

N_ROTATIONS = 4


def rotations(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(4B, C, H, W) images rotated by 90°·k counter-clockwise, grouped by k, and the labels k."""
    rotated = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(N_ROTATIONS)])
    labels = torch.arange(N_ROTATIONS, device=images.device).repeat_interleave(len(images))
    return rotated, labels


def square_size(encoder: Encoder, who: str) -> int:
    """The side of the encoder's square training images; a 90° rotation of anything else changes its shape."""
    height, width = encoder.config["image_size"]
    if height != width:
        raise ValueError(
            f"{who} rotates by 90°, which needs square images, got {height}×{width}; "
            "set augmentation.output_size to a square size"
        )
    return height


def rotation_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy of the rotation logits, and the global batch's accuracy (every rank holds an
    equal share)."""
    accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
    return F.cross_entropy(logits.float(), labels), float(mean_over_ranks(accuracy))


class RotNet(Method):
    n_views = 1

    def __init__(self, encoder: Encoder, params: RotNetParams):
        super().__init__(encoder)
        square_size(encoder, "rotnet")
        self.head = ProjectionHead(encoder.feature_dim, params.hidden_dim, N_ROTATIONS)

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return rotations(batch[:, 0])

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        images, labels = inputs
        loss, accuracy = rotation_loss(self.head(self.encoder(images)), labels)
        return loss, {"accuracy": accuracy}
