"""Projection heads that sit on top of an encoder during pretraining only."""

from __future__ import annotations

from torch import nn


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
