"""A Vision Transformer in plain PyTorch (Dosovitskiy et al., 2021).

Patch embedding by a stride-``patch_size`` conv, a learned cls token, learned
position embeddings for the training image size (initialised to MAE's 2-D
sine-cosine ones, interpolated bicubically for other sizes), pre-norm blocks
and a final LayerNorm. Pixels beyond the last
whole patch are ignored.

Features are the mean of the patch tokens (``pool="mean"``, the default) or the
cls token (``pool="cls"``). The mean is the default because the masked-image
methods (MAE, BEiT) train the patch tokens directly and the cls token only
indirectly, and the contrastive methods learn well with either.

MAE and BEiT drive the parts themselves: ``patch_tokens`` (embedding without
positions), ``position_embedding``, ``cls_token``, ``transform`` (blocks + norm)
and ``pooled``; ``patchify`` cuts pixels into the same patches. The report draws
``last_attention``, the last block's attention probabilities, computed apart
from ``forward`` so that training keeps the fused attention kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer width {dim} is not divisible by its {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, heads, N, N) attention probabilities, each query's row summing to 1: what ``forward``
        attends with, computed apart so that training keeps the fused kernel (for the report)."""
        b, n, d = x.shape
        q, k, _ = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def sincos_position_embedding(grid: tuple[int, int], dim: int) -> torch.Tensor:
    """(1, 1 + N, dim) 2-D sine-cosine position embeddings of MAE; zeros for the cls token.

    Half the channels encode the row, half the column, each as sines and cosines
    of the index at frequencies 1/10000^(2i/(dim/2)).
    """
    if dim % 4:
        raise ValueError(f"sine-cosine position embeddings need a width divisible by 4, got {dim}")
    frequencies = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(
        torch.arange(grid[0], dtype=torch.float64), torch.arange(grid[1], dtype=torch.float64), indexing="ij"
    )
    angles = [index.reshape(-1, 1) * frequencies for index in (rows, cols)]
    patches = torch.cat([f(angle) for angle in angles for f in (torch.sin, torch.cos)], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), patches]).unsqueeze(0).float()


def init_transformer_weights(module: nn.Module) -> None:
    """MAE's initialisation: Xavier-uniform linear layers, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class ViT(nn.Module):
    def __init__(
        self,
        in_channels: int,
        image_size: Sequence[int],
        *,
        dim: int,
        depth: int,
        heads: int,
        patch_size: int,
        pool: Literal["mean", "cls"] = "mean",
        name: str = "vit",
    ):
        super().__init__()
        self.name = name  # the parameter section, for error messages
        self.patch_size = patch_size
        self.pool = pool
        self.feature_dim = dim
        self.grid = self.grid_for(*image_size)
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        with torch.no_grad():  # learned, but starting from MAE's fixed embeddings: position is clear from step 0
            self.pos_embed.copy_(sincos_position_embedding(self.grid, dim))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(dim, -1))
        init_transformer_weights(self.blocks)

    def grid_for(self, height: int, width: int) -> tuple[int, int]:
        """Patches per column and per row for an image of this size."""
        p = self.patch_size
        if height < p or width < p:
            raise ValueError(
                f"pretraining.{self.name}.patch_size={p} is larger than the {height}×{width} images; "
                f"lower pretraining.{self.name}.patch_size"
            )
        return height // p, width // p

    def patch_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, dim) patch embeddings, row-major over the grid, without positions."""
        self.grid_for(*x.shape[-2:])
        return self.patch_embed(x).flatten(2).transpose(1, 2)

    def position_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """(1, 1 + N, dim): the cls position, then the patch grid's, resized to ``grid``."""
        if grid == self.grid:
            return self.pos_embed
        cls_position, patch_positions = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        patch_positions = patch_positions.reshape(1, *self.grid, -1).permute(0, 3, 1, 2)
        patch_positions = F.interpolate(patch_positions, size=grid, mode="bicubic", align_corners=False)
        return torch.cat([cls_position, patch_positions.flatten(2).transpose(1, 2)], dim=1)

    def transform(self, tokens: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """Features of transformed tokens whose first one is the cls token."""
        return tokens[:, 0] if self.pool == "cls" else tokens[:, 1:].mean(dim=1)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1 + N, dim): the cls token, then the patch embeddings, with their positions."""
        positions = self.position_embedding(self.grid_for(*x.shape[-2:]))
        patches = self.patch_tokens(x) + positions[:, 1:]
        cls = (self.cls_token + positions[:, :1]).expand(len(x), -1, -1)
        return torch.cat([cls, patches], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooled(self.transform(self.tokens(x)))

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The transformed patch tokens as one (B, dim, rows, cols) map, at a stride of ``patch_size``."""
        rows, cols = self.grid_for(*x.shape[-2:])
        patches = self.transform(self.tokens(x))[:, 1:]
        return [patches.transpose(1, 2).reshape(len(x), -1, rows, cols)]

    def last_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, heads, 1 + N, 1 + N): the last block's attention probabilities on images ``x``."""
        tokens = self.tokens(x)
        for block in self.blocks[:-1]:
            tokens = block(tokens)
        last = self.blocks[-1]
        return last.attn.weights(last.norm1(tokens))


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, N, C·p·p) pixel patches in the order of ``ViT.patch_tokens``."""
    b, c, h, w = images.shape
    gh, gw = h // patch_size, w // patch_size
    x = images[..., : gh * patch_size, : gw * patch_size]
    x = x.reshape(b, c, gh, patch_size, gw, patch_size).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, gh * gw, c * patch_size * patch_size)


def vit_tiny(
    in_channels: int,
    image_size: Sequence[int],
    patch_size: int = 4,
    depth: int = 12,
    pool: Literal["mean", "cls"] = "mean",
) -> ViT:
    return ViT(
        in_channels, image_size, dim=192, depth=depth, heads=3, patch_size=patch_size, pool=pool, name="vit_tiny"
    )


def vit_small(
    in_channels: int,
    image_size: Sequence[int],
    patch_size: int = 4,
    depth: int = 12,
    pool: Literal["mean", "cls"] = "mean",
) -> ViT:
    return ViT(
        in_channels, image_size, dim=384, depth=depth, heads=6, patch_size=patch_size, pool=pool, name="vit_small"
    )
