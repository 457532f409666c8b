"""What the trainer trains on for texts: ``TokenViews``, the training texts as WordPiece ids.

It serves the trainer's part of ``selfsup.data.training_views.TrainingViews``: a batch is the
(B, V, L) ids of B texts, the same ids for each of the V views (what makes views differ, SimCSE's
dropout and token cutoff or MLM's masks, is drawn in the method), cut to the longest text of the
batch. The epoch's order comes from the batch-order generator and each rank takes its share of
every global batch, as for images, so budgets, checkpoints, resume and several processes work the same.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from selfsup import distributed
from selfsup.data.store import content_hash
from selfsup.text.wordpiece import PAD


@dataclass(frozen=True, eq=False)
class TokenViews:
    """int32 (N, L) token ids of the training texts (``selfsup.text.wordpiece.encode_texts``)."""

    ids: np.ndarray
    vocab_size: int
    kind: ClassVar[str] = "tokens"

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def views_per_image(self) -> None:
        return None  # any number of views: a text's views are drawn by the method

    @property
    def view_shape(self) -> tuple[int, int, int]:
        return 1, 1, int(self.ids.shape[1])  # a text is a 1 × L row of ids

    @functools.cached_property
    def data_key(self) -> str:
        return content_hash(self.ids, str(self.vocab_size))

    def epoch_batches(
        self,
        n_views: int,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
        memory_format: torch.memory_format,
        epoch: int,
        skip: int = 0,
        local_crops: None = None,  # the protocol's multi-crop seam: no text method asks for local views
    ) -> Iterator[torch.Tensor]:
        first, share = distributed.batch_share(batch_size)
        order = torch.randperm(len(self), generator=generator).numpy()
        lengths = (self.ids != PAD).sum(axis=1)
        starts = range(0, len(self) - batch_size + 1, batch_size)
        for start in itertools.islice(starts, skip, None):
            rows = order[start + first : start + first + share]
            ids = torch.from_numpy(self.ids[rows, : lengths[rows].max()].astype(np.int64))
            yield ids.unsqueeze(1).expand(-1, n_views, -1).to(device)
