"""The text methods' and the text encoders' hyperparameters, under their names in ``pretraining``,
and the WordPiece tokenizer's (``pretraining.wordpiece``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from selfsup.config.base import StrictParams


class WordPieceParams(StrictParams):
    vocab_size: int = Field(8000, ge=100)  # the most the trainer keeps; a small corpus gives fewer
    min_frequency: int = Field(2, ge=1)  # a merge must occur this often in the training texts
    max_length: int = Field(64, ge=8)  # tokens per text, [CLS] and [SEP] included; longer texts are cut
    lowercase: bool = True


class TextTransformerParams(StrictParams):
    dim: int = Field(256, ge=8)
    depth: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)  # SimCSE's two views are two dropout masks: keep it above 0
    pooling: Literal["mean", "cls"] = "mean"  # the feature: the mean of the non-padding tokens, or [CLS]

    @model_validator(mode="after")
    def _shape(self) -> TextTransformerParams:
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} must be a multiple of heads={self.heads}")
        return self


class TextBagParams(StrictParams):
    dim: int = Field(1024, ge=8)  # the width of the token embeddings, and of the feature


class MLMParams(StrictParams):
    mask_ratio: float = Field(0.15, gt=0, lt=1)  # of the tokens (not [CLS], [SEP], padding) chosen for prediction
    # Of the chosen tokens: replaced by [MASK], by a random token, the rest kept (BERT's 80/10/10).
    mask_token_p: float = Field(0.8, ge=0, le=1)
    random_token_p: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _fractions(self) -> MLMParams:
        if self.mask_token_p + self.random_token_p > 1:
            raise ValueError(f"mask_token_p + random_token_p = {self.mask_token_p + self.random_token_p} exceeds 1")
        return self


class SimCSEParams(StrictParams):
    temperature: float = Field(0.05, gt=0)  # the paper's
    # Of each view's tokens ([CLS], [SEP], padding excluded), the fraction removed, independently per
    # view (ConSERT's token cutoff; at least one token stays). 0: the paper's views, two dropout masks only.
    token_cutoff: float = Field(0.0, ge=0, lt=1)
    # Weight of masked language modelling on the first view (corrupted by pretraining.mlm's rule) beside
    # the contrastive loss; the SimCSE paper's auxiliary objective used 0.1. 0: no MLM term.
    mlm_weight: float = Field(0.0, ge=0)
    projection_dim: int = Field(256, ge=1)
    hidden_dim: int = Field(256, ge=1)
