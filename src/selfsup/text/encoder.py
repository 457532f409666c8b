"""The text encoders, by the name used in ``pretraining.backbone``: a small Transformer over WordPiece ids,
built from torch's own layers with no pretrained weights, or the bag of token embeddings
(``selfsup.text.bag``), and how a checkpoint rebuilds either.

The Transformer has token and learned position embeddings, ``depth`` pre-LayerNorm encoder layers (GELU, dropout),
and a final LayerNorm. The sentence feature is the mean of the non-padding token states
(``pooling: mean``) or the ``[CLS]`` state (``pooling: cls``); ``token_states`` gives every token's,
for masked language modelling. Padding (id 0) is masked out of attention.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.config.text_params import TextBagParams, TextTransformerParams
from selfsup.text.bag import TextBag
from selfsup.text.wordpiece import PAD


class TextTransformer(nn.Module):
    def __init__(self, vocab_size: int, max_length: int, params: TextTransformerParams):
        super().__init__()
        self.vocab_size, self.max_length, self.pooling = vocab_size, max_length, params.pooling
        self.feature_dim = params.dim
        self.tokens = nn.Embedding(vocab_size, params.dim, padding_idx=PAD)
        self.positions = nn.Parameter(torch.zeros(1, max_length, params.dim))
        nn.init.trunc_normal_(self.positions, std=0.02)
        nn.init.trunc_normal_(self.tokens.weight, std=0.02)
        self.dropout = nn.Dropout(params.dropout)
        layer = nn.TransformerEncoderLayer(
            params.dim,
            params.heads,
            round(params.dim * params.mlp_ratio),
            params.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, params.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(params.dim)

    def token_states(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L, dim) states of the (B, L) token ids."""
        x = self.dropout(self.tokens(ids) + self.positions[:, : ids.shape[1]])
        return self.norm(self.layers(x, src_key_padding_mask=ids == PAD))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, dim) sentence features."""
        return self.pool(self.token_states(ids), ids)

    def pool(self, states: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The sentence features of the token ``states`` of ``ids``."""
        if self.pooling == "cls":
            return states[:, 0]
        keep = (ids != PAD).unsqueeze(-1).to(states.dtype)
        return (states * keep).sum(1) / keep.sum(1).clamp_min(1)


# Each text backbone: its module and its parameters' schema (``pretraining.<name>``).
TEXT_BACKBONES: dict[str, tuple[type[nn.Module], type]] = {
    "text_transformer": (TextTransformer, TextTransformerParams),
    "text_bag": (TextBag, TextBagParams),
}


def text_encoder_config(vocab_size: int, max_length: int, params) -> dict:
    """What rebuilds the encoder: its backbone, the vocabulary size, the length and ``pretraining.<backbone>``."""
    return {
        "backbone": params.backbone,
        "vocab_size": vocab_size,
        "max_length": max_length,
        "backbone_params": getattr(params, params.backbone).model_dump(mode="json"),
    }


def build_text_encoder(config: dict) -> nn.Module:
    module, schema = TEXT_BACKBONES[config["backbone"]]
    return module(config["vocab_size"], config["max_length"], schema(**config["backbone_params"]))


def text_encoder_from_checkpoint(checkpoint: dict) -> nn.Module:
    """The trained encoder of a text run's ``encoder`` checkpoint, in eval mode on the CPU."""
    config = checkpoint.get("config", {})
    if config.get("backbone") not in TEXT_BACKBONES:
        raise ValueError(
            f"not a text encoder checkpoint: backbone {config.get('backbone')!r}; run the text pretraining first"
        )
    encoder = build_text_encoder(config)
    encoder.load_state_dict(checkpoint["state_dict"])
    return encoder.eval()


def random_text_encoder(config: dict, seed: int) -> nn.Module:
    """An untrained encoder of the same architecture, reproducible by seed: the random-init baseline."""
    torch.manual_seed(seed)
    return build_text_encoder(config).eval()
