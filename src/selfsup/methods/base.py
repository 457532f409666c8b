"""The common shape of every self-supervised method.

A method is built from ``(encoder, params)`` and exposes ``.encoder`` (kept for
features) and ``.feature_dim``. The trainer hands it a batch of ``n_views``
augmented views per image, float (B, V, C, H, W) in [0, 1]; ``views`` turns that
into the method's inputs and ``loss`` into ``(loss, logs)``. A multi-crop method
(``local_crops`` set) gets a ``MultiCropBatch`` instead: its global views and
its smaller local views. ``before_optimizer_step`` is the hook for parts frozen
early in training, ``on_step_end`` the hook for momentum encoders, queues and
schedules.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.config import MultiCropParams
from selfsup.data.training_views import LocalCrops
from selfsup.models import Encoder


class Method(nn.Module):
    n_views: int = 2
    uses_codebook: bool = False  # True: built as (encoder, params, codebook) with a visual-token codebook
    local_crops: LocalCrops | None = None  # the small views a multi-crop method wants besides its n_views

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

    def before_optimizer_step(self, epoch: int) -> None:
        """Called between the backward pass and the optimizer step; a method that keeps a part fixed
        early in training drops that part's gradients here (``drop_gradients``)."""

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Called after each optimizer step; stateless methods do nothing."""


def local_crops_of(params: MultiCropParams) -> LocalCrops | None:
    """What a multi-crop method asks of the training views; None without local crops."""
    if not params.local_crops:
        return None
    return LocalCrops(params.local_crops, tuple(params.local_crop_size), tuple(params.local_crop_scale))


def drop_gradients(parameters) -> None:
    """Leave ``parameters`` out of the coming optimizer step: with no gradient (None, not zero) the
    optimizer skips them, so neither the update nor AdamW's weight decay moves them. Every rank
    calls it at the same epoch, after the gradients were averaged, so all ranks skip alike."""
    for parameter in parameters:
        parameter.grad = None
