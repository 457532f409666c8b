"""MAE: masked autoencoder (He et al., 2022).

A random ``mask_ratio`` of the patches is hidden per image; the ViT encodes
only the visible ones (plus the cls token); a small transformer decoder gets
the encoded patches back in place among learned mask tokens and predicts the
pixels of every patch. The loss is the mean squared error over the hidden
patches only, on the normalised image, optionally per-patch standardised
(``norm_pix_loss``). The decoder's position embeddings are the paper's fixed
2-D sine-cosine ones.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.config import MAEParams
from selfsup.losses import masked_mse
from selfsup.methods.base import Method
from selfsup.methods.masked_image import random_mask, vit_backbone
from selfsup.models import Encoder
from selfsup.models.vit import Block, init_transformer_weights, patchify, sincos_position_embedding


class MAEDecoder(nn.Module):
    def __init__(self, encoder_dim: int, grid: tuple[int, int], patch_dim: int, params: MAEParams):
        super().__init__()
        dim = params.decoder_dim
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_position_embedding(grid, dim), persistent=False)
        self.blocks = nn.Sequential(*(Block(dim, params.decoder_heads) for _ in range(params.decoder_depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, patch_dim)
        nn.init.normal_(self.mask_token, std=0.02)
        init_transformer_weights(self)

    def forward(self, latent: torch.Tensor, visible_index: torch.Tensor) -> torch.Tensor:
        """Pixel predictions (B, N, patch_dim) from the encoded cls + visible tokens."""
        tokens = self.embed(latent)
        b, _, d = tokens.shape
        n = self.pos_embed.shape[1] - 1
        patches = (
            self.mask_token.to(tokens.dtype)
            .expand(b, n, d)
            .scatter(1, visible_index.unsqueeze(-1).expand(-1, -1, d), tokens[:, 1:])
        )
        x = torch.cat([tokens[:, :1], patches], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x)))[:, 1:]


def standardise_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each patch minus its mean, over its (unbiased) std: MAE's ``norm_pix_loss`` target."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps).sqrt()


class MAE(Method):
    n_views = 1

    def __init__(self, encoder: Encoder, params: MAEParams):
        super().__init__(encoder)
        self.vit = vit_backbone(encoder, "mae")
        self.mask_ratio = params.mask_ratio
        self.norm_pix_loss = params.norm_pix_loss
        patch_dim = encoder.config["in_channels"] * self.vit.patch_size**2
        self.decoder = MAEDecoder(self.vit.feature_dim, self.vit.grid, patch_dim, params)

    def views(self, batch: torch.Tensor) -> torch.Tensor:
        return batch[:, 0]

    def reconstruct(self, images: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction, target) pixel patches (B, N, C·p·p) when ``mask`` hides patches."""
        x = self.encoder.normalise(images)
        vit = self.vit
        positions = vit.position_embedding(vit.grid_for(*x.shape[-2:]))
        patches = vit.patch_tokens(x) + positions[:, 1:]
        b, _, d = patches.shape
        visible_index = (~mask).nonzero(as_tuple=True)[1].view(b, -1)
        visible = patches.gather(1, visible_index.unsqueeze(-1).expand(-1, -1, d))
        cls = (vit.cls_token + positions[:, :1]).expand(b, -1, -1)
        latent = vit.transform(torch.cat([cls, visible], dim=1))
        target = patchify(x, vit.patch_size)
        if self.norm_pix_loss:
            target = standardise_patches(target)
        return self.decoder(latent, visible_index), target

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        b, n = len(images), self.vit.grid[0] * self.vit.grid[1]
        mask = random_mask(b, n, self.mask_ratio, images.device)
        prediction, target = self.reconstruct(images, mask)
        return masked_mse(prediction, target, mask), {}
