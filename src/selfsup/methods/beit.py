"""BEiT: masked image modelling with discrete visual tokens (Bao et al., 2022).

Each image is cut into patches and tokenised with a codebook (``tokenize``; see
``selfsup.tokenizer``: k-means fitted on the data, where BEiT uses DALL-E's
pretrained dVAE). About ``mask_ratio`` of the patch embeddings are replaced by
a learned mask token, blockwise as in the paper or uniformly at random; the ViT
sees the whole sequence and a linear head over its outputs predicts the token
of every hidden patch, scored by cross-entropy on the hidden positions only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from selfsup.config import BEiTParams
from selfsup.distributed import mean_over_ranks
from selfsup.losses import masked_token_cross_entropy
from selfsup.methods.base import Method
from selfsup.methods.masked_image import block_mask, random_mask, vit_backbone
from selfsup.models import Encoder
from selfsup.models.vit import patchify


def tokenize(images: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(B, N) long: the nearest codeword of each patch of [0, 1] images (B, C, H, W)."""
    patches = patchify(images, codebook.shape[-1])
    codewords = codebook.flatten(1).to(patches.dtype)
    # ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖², and ‖x‖² does not change the argmin.
    scores = codewords.pow(2).sum(dim=1) - 2 * patches @ codewords.T
    return scores.argmin(dim=-1)


class BEiT(Method):
    n_views = 1
    uses_codebook = True

    def __init__(self, encoder: Encoder, params: BEiTParams, codebook: np.ndarray):
        super().__init__(encoder)
        self.vit = vit_backbone(encoder, "beit")
        expected = (encoder.config["in_channels"], self.vit.patch_size, self.vit.patch_size)
        if len(codebook) == 0 or tuple(codebook.shape[1:]) != expected:
            raise ValueError(
                f"beit needs a tokenizer codebook of (K, C, p, p) = (K, {', '.join(map(str, expected))}) "
                f"for these images and pretraining.{encoder.config['backbone']}.patch_size, got "
                f"{tuple(codebook.shape)}; rerun the fit_tokenizer node with pretraining.method=beit"
            )
        self.register_buffer("codebook", torch.tensor(np.asarray(codebook), dtype=torch.float32), persistent=False)
        self.mask_ratio = params.mask_ratio
        self.masking = params.masking
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.vit.feature_dim))
        self.head = nn.Linear(self.vit.feature_dim, len(codebook))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def views(self, batch: torch.Tensor) -> torch.Tensor:
        return batch[:, 0]

    def mask(self, batch: int, grid: tuple[int, int], device: torch.device) -> torch.Tensor:
        if self.masking == "block":
            return block_mask(batch, grid, self.mask_ratio, device)
        return random_mask(batch, grid[0] * grid[1], self.mask_ratio, device)

    def token_logits(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, N, K) codeword logits of every patch when ``mask`` hides patches."""
        x = self.encoder.normalise(images)
        vit = self.vit
        positions = vit.position_embedding(vit.grid_for(*x.shape[-2:]))
        patches = vit.patch_tokens(x)
        patches = torch.where(mask.unsqueeze(-1), self.mask_token.to(patches.dtype), patches)
        cls = vit.cls_token.expand(len(x), -1, -1)
        hidden = vit.transform(torch.cat([cls, patches], dim=1) + positions)
        return self.head(hidden[:, 1:])

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            tokens = tokenize(images, self.codebook)
        mask = self.mask(len(images), self.vit.grid_for(*images.shape[-2:]), images.device)
        logits = self.token_logits(images, mask)
        accuracy = (logits.detach().argmax(dim=-1) == tokens)[mask].float().mean()
        # the global batch's accuracy (every rank holds an equal share)
        return masked_token_cross_entropy(logits, tokens, mask), {"token_accuracy": float(mean_over_ranks(accuracy))}
