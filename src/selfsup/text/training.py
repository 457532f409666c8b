"""Pretraining on texts: a text method on a text encoder, trained by the images' trainer (``selfsup.train``)."""

from __future__ import annotations

import numpy as np

from selfsup.config import PretrainingParams
from selfsup.methods.base import Method
from selfsup.text.encoder import build_text_encoder, text_encoder_config
from selfsup.text.methods import TEXT_METHODS
from selfsup.text.token_views import TokenViews
from selfsup.tokenizer import empty_codebook
from selfsup.train import TrainResult, pretrain


def text_model(views: TokenViews, params: PretrainingParams, codebook: np.ndarray) -> tuple[Method, dict]:
    """``pretraining.method`` (``mlm`` or ``simcse``) on ``pretraining.backbone`` (the Transformer or the bag),
    sized for the vocabulary and length."""
    config = text_encoder_config(views.vocab_size, views.view_shape[2], params)
    method_class = TEXT_METHODS[params.method]
    return method_class(build_text_encoder(config), params), config


def pretrain_texts(ids: np.ndarray, vocab_size: int, params: PretrainingParams) -> TrainResult:
    """Train on the int32 (N, L) token ids of the training texts: the time budget, bf16, checkpoints,
    resume and several processes as for images. No visual codebook: an empty one keys the checkpoints."""
    return pretrain(TokenViews(ids, vocab_size), params, codebook=empty_codebook(1), build_model=text_model)
