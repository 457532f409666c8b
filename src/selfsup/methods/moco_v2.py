"""MoCo v2 (Chen et al., 2020): a momentum key encoder, a queue of negative keys, and shuffling BN.

Shuffling BN (He et al., 2020, §3.3). A key normalised by batch statistics that
its query shares can be told from the queue's keys, which came from other
batches, by those statistics alone: the model "cheats" the pretext task. So
the key encoder never normalises a key together with the query's own image:

- each view's keys are encoded apart, so no batch-norm batch of the key encoder
  holds both views of an image (the positive of view 1's query is view 2's key);
- each view's global batch is shuffled by a permutation every process agrees on
  (drawn from the method's own generator, seeded from the run's seed and saved
  in its state, so a resumed run draws the same ones) and cut into
  ``shuffle_bn_groups`` groups, each normalised with its own statistics; the
  keys are then put back in the batch's order.

On N processes each one encodes ``shuffle_bn_groups / N`` whole groups of the
gathered, shuffled batch with its own batch norm (the key encoder's BatchNorms
stay per process, ``keep_batch_norm_local``) and the keys are gathered back, as
the paper's code does across GPUs. One process with G groups therefore computes
what N processes with G groups compute, when G divides the batch. The query
encoder keeps the run's batch norm over both views of the (global) batch, like
every other method's encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.config import MoCoV2Params
from selfsup.distributed import gather, keep_batch_norm_local, local_rows, world_size
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
        self.shuffle_bn_groups = params.shuffle_bn_groups
        self.projector = ProjectionHead(encoder.feature_dim, params.hidden_dim, params.projection_dim)
        self.key_encoder = keep_batch_norm_local(momentum_copy(encoder))
        self.key_projector = keep_batch_norm_local(momentum_copy(self.projector))
        self.queue = NegativeQueue(params.queue_size, params.projection_dim)
        # Drawn from the seeded global generator before each process reseeds its own: the same on every rank.
        self.shuffle_generator = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        self._new_keys: torch.Tensor | None = None

    def get_extra_state(self) -> dict:
        return {"shuffle_generator": self.shuffle_generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.shuffle_generator.set_state(state["shuffle_generator"])

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[:, 0], batch[:, 1]

    @torch.no_grad()
    def keys(self, images: torch.Tensor) -> torch.Tensor:
        """Shuffling BN: the keys (float32) of this rank's ``images``, one view, in their order."""
        everything = gather(images)
        order = torch.randperm(len(everything), generator=self.shuffle_generator).to(images.device)
        mine = everything[order[local_rows(len(images), images.device)]]
        groups = mine.tensor_split(self.shuffle_bn_groups // world_size())
        shuffled = gather(torch.cat([self.key_projector(self.key_encoder(group)).float() for group in groups]))
        keys = torch.empty_like(shuffled)
        keys[order] = shuffled
        return keys[local_rows(len(images), images.device)]

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x1, x2 = inputs
        q1, q2 = self.projector(self.encoder(torch.cat(inputs))).chunk(2)
        k1, k2 = self.keys(x1), self.keys(x2)
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
