"""Projection heads that sit on top of an encoder during pretraining only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def float32_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` in float32, also inside a bf16 autocast region.

    For logits that a sharp softmax reads: at a temperature of 0.04 a cosine rounded to
    bf16's 8 bits (error up to 0.004) moves its logit by 0.1.
    """
    with torch.autocast(x.device.type, enabled=False):
        return F.linear(x.float(), weight.float())


class ProjectionHead(nn.Sequential):
    """SimCLR's MLP: Linear → BN → ReLU, repeated, then a final Linear.

    ``output_norm`` adds a BatchNorm without affine parameters after the last
    Linear, as the projectors of SimSiam and MoCo v3 have.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2, output_norm: bool = False):
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
            dim = hidden_dim
        layers.append(nn.Linear(dim, out_dim, bias=not output_norm))
        if output_norm:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        super().__init__(*layers)
