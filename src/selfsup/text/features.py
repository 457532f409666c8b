"""Sentence features of texts with frozen text encoders: the ``features`` table's float32 columns."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from selfsup.text.wordpiece import PAD


@torch.inference_mode()
def embed_token_ids(
    encoders: list[nn.Module],
    ids: np.ndarray,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    normalize: bool = True,
) -> list[np.ndarray]:
    """float32 (N, dim) features of the int32 (N, L) ids for each encoder, in one pass, in eval mode.

    Texts go in order of length, each batch cut to its longest text, so short texts cost little
    (the features do not depend on the padding: it is masked out of attention and pooling)."""
    encoders = [encoder.to(device).eval() for encoder in encoders]
    outs = [np.empty((len(ids), encoder.feature_dim), dtype=np.float32) for encoder in encoders]
    lengths = (ids != PAD).sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    for start in tqdm(range(0, len(ids), batch_size), desc="embedding texts", unit="batch", disable=None):
        rows = order[start : start + batch_size]
        batch = torch.from_numpy(ids[rows, : lengths[rows].max()].astype(np.int64)).to(device)
        for encoder, out in zip(encoders, outs):
            features = encoder(batch).float()
            if normalize:
                features = torch.nn.functional.normalize(features, dim=1)
            out[rows] = features.cpu().numpy()
    return outs
