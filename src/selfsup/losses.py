"""Self-supervised losses as pure functions of embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of SimCLR (Chen et al., 2020), averaged over all 2N anchors.

    For anchor i among the 2N views, the positive is the other view of the same
    image and the denominator runs over the 2N − 1 other views, with cosine
    similarity divided by ``temperature``.
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """Collapse monitor: per-dimension std of L2-normalised embeddings, × sqrt(d).

    About 1 for well-spread embeddings, 0 when every input maps to one point.
    """
    normalised = F.normalize(z.detach().float(), dim=1)
    return normalised.std(dim=0).mean() * normalised.shape[1] ** 0.5
