"""MoCo v2 (Chen et al., 2020): a momentum key encoder and a queue of negative keys."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.config import MoCoV2Params
from selfsup.distributed import gather
from selfsup.losses import info_nce
from selfsup.methods.base import Method
from selfsup.methods.momentum import ema_update, momentum_copy
from selfsup.models import Encoder, ProjectionHead


class NegativeQueue(nn.Module):
    """A FIFO of the most recent keys: MoCo's dictionary of negatives.

    ``pointer`` is the row of the oldest key, the next to be overwritten.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Overwrite the oldest rows with ``keys``, wrapping around the end."""
        size = len(self.keys)
        keys = keys[-size:]  # more keys than rows: only the newest fit
        rows = (self.pointer + torch.arange(len(keys), device=keys.device)) % size
        self.keys[rows] = keys.to(self.keys.dtype)
        self.pointer.copy_((self.pointer + len(keys)) % size)


class MoCoV2(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: MoCoV2Params):
        super().__init__(encoder)
        self.temperature = params.temperature
        self.momentum = params.momentum
        self.projector = ProjectionHead(encoder.feature_dim, params.hidden_dim, params.projection_dim)
        self.key_encoder = momentum_copy(encoder)
        self.key_projector = momentum_copy(self.projector)
        self.queue = NegativeQueue(params.queue_size, params.projection_dim)
        self._new_keys: torch.Tensor | None = None

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        both = torch.cat(inputs)
        q1, q2 = self.projector(self.encoder(both)).chunk(2)
        with torch.no_grad():
            k1, k2 = self.key_projector(self.key_encoder(both)).chunk(2)
        negatives = self.queue.keys
        loss = (info_nce(q1, k2, self.temperature, negatives) + info_nce(q2, k1, self.temperature, negatives)) / 2
        self._new_keys = torch.cat([gather(k1), gather(k2)])  # every rank enqueues the global batch
        return loss, {}

    def on_step_end(self, step: int, total_steps: int) -> None:
        ema_update(self.key_encoder, self.encoder, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)
        if self._new_keys is not None:
            self.queue.enqueue(self._new_keys)
            self._new_keys = None
