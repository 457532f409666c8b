"""The common shape of every self-supervised method.

A method is built from ``(encoder, params)`` and exposes ``.encoder`` (kept for
features) and ``.feature_dim``. The trainer hands it a batch of ``n_views``
augmented views per image, float (B, V, C, H, W) in [0, 1]; ``views`` turns that
into the method's inputs and ``loss`` into ``(loss, logs)``. ``on_step_end`` is
the hook for momentum encoders, queues and schedules.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.models import Encoder


class Method(nn.Module):
    n_views: int = 2
    uses_codebook: bool = False  # True: built as (encoder, params, codebook) with a visual-token codebook

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder = encoder

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim

    def views(self, batch: torch.Tensor):
        raise NotImplementedError

    def loss(self, inputs) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """One training step's ``(loss, logs)``: the call that DDP and ``torch.compile`` wrap."""
        return self.loss(self.views(batch))

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Called after each optimizer step; stateless methods do nothing."""
