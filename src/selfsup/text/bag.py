"""The bag encoder: a text's feature is the weighted mean of its tokens' embeddings, order ignored.

Each WordPiece token has a learned embedding and a learned positive weight (1 for every token at
the start), so training can learn which words identify a text, as IDF weights do by counting. Only
the text's own tokens count ([CLS], [SEP] and padding do not). Untrained, the feature is a random
projection of the text's token counts; trained contrastively on two random subsets of each text's tokens
(SimCSE with ``token_cutoff``), tokens that occur in the same texts move together. It has no
context and no dropout: masked language modelling needs ``text_transformer``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.config.text_params import TextBagParams
from selfsup.text.wordpiece import PAD, ordinary_tokens


class TextBag(nn.Module):
    def __init__(self, vocab_size: int, max_length: int, params: TextBagParams):
        # max_length is unused (a bag has no positions): the text encoders share one constructor.
        super().__init__()
        self.vocab_size = vocab_size
        self.feature_dim = params.dim
        self.tokens = nn.EmbeddingBag(vocab_size, params.dim, mode="sum", padding_idx=PAD)
        nn.init.normal_(self.tokens.weight, std=params.dim**-0.5)
        with torch.no_grad():
            self.tokens.weight[PAD].zero_()
        self.token_weights = nn.Embedding(vocab_size, 1)
        nn.init.zeros_(self.token_weights.weight)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, dim) features of the (B, L) token ids."""
        # softplus(0) / ln 2 = 1: every token weighs the same until training says otherwise.
        weights = F.softplus(self.token_weights(ids).squeeze(-1)) / math.log(2) * ordinary_tokens(ids)
        weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
        return self.tokens(ids, per_sample_weights=weights.to(self.tokens.weight.dtype))
