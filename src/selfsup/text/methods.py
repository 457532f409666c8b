"""The text methods, by the name used in ``pretraining.method``: masked language modelling and SimCSE.

Both follow the image methods' shape (``selfsup.methods.base.Method``), so the image trainer
runs them: a batch is (B, V, L) token ids, one row of ids per view. MLM's random masks and
SimCSE's dropout masks come from torch's global generator, which checkpoints restore.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.config import PretrainingParams
from selfsup.config.text_params import MLMParams
from selfsup.losses import nt_xent
from selfsup.methods.base import Method
from selfsup.models import ProjectionHead
from selfsup.text.encoder import TextTransformer
from selfsup.text.wordpiece import MASK, PAD, SPECIAL_TOKENS, ordinary_tokens


def choose_tokens(ids: torch.Tensor, ratio: float) -> torch.Tensor:
    """Each ordinary token chosen with probability ``ratio``, and one more per text (its lowest draw)
    so that no text goes without."""
    candidates = ordinary_tokens(ids)
    scores = torch.rand(ids.shape, device=ids.device).masked_fill(~candidates, 2.0)
    return ((scores < ratio) | (scores == scores.min(dim=1, keepdim=True).values)) & candidates


def cut_tokens(ids: torch.Tensor, ratio: float) -> torch.Tensor:
    """ConSERT's token cutoff: each ordinary token removed (made padding, which attention and the mean
    skip) with probability ``ratio``; one token of each text always stays."""
    keep = choose_tokens(ids, 1.0 - ratio)
    return torch.where(keep | ~ordinary_tokens(ids), ids, PAD)


def mask_tokens(ids: torch.Tensor, params: MLMParams, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: (inputs, chosen). ``mask_ratio`` of the tokens other than [CLS], [SEP] and padding
    are chosen (at least one per text), and of those ``mask_token_p`` become [MASK], ``random_token_p`` a
    random ordinary token, the rest stay as they are."""
    chosen = choose_tokens(ids, params.mask_ratio)
    action = torch.rand(ids.shape, device=ids.device)
    random_tokens = torch.randint(len(SPECIAL_TOKENS), vocab_size, ids.shape, device=ids.device)
    inputs = torch.where(chosen & (action < params.mask_token_p), MASK, ids)
    replaced = chosen & (action >= params.mask_token_p) & (action < params.mask_token_p + params.random_token_p)
    inputs = torch.where(replaced, random_tokens, inputs)
    return inputs, chosen


def token_prediction_head(encoder: TextTransformer) -> nn.Module:
    """BERT's prediction head: a token state to logits over the vocabulary."""
    dim = encoder.feature_dim
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim), nn.Linear(dim, encoder.vocab_size))


def masked_prediction(
    head: nn.Module, states: torch.Tensor, ids: torch.Tensor, chosen: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Cross-entropy of the original ``ids`` at the ``chosen`` places from their ``states``, and its accuracy."""
    logits = head(states[chosen]).float()
    targets = ids[chosen]
    return F.cross_entropy(logits, targets), float((logits.argmax(1) == targets).float().mean())


class MLM(Method):
    """Masked language modelling (Devlin et al., 2019): predict the chosen tokens from the corrupted text."""

    n_views = 1

    def __init__(self, encoder: TextTransformer, params: PretrainingParams):
        super().__init__(encoder)
        self.params = params.mlm
        self.head = token_prediction_head(encoder)

    def views(self, batch: torch.Tensor) -> torch.Tensor:
        return batch[:, 0].long()

    def loss(self, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        inputs, chosen = mask_tokens(ids, self.params, self.encoder.vocab_size)
        loss, accuracy = masked_prediction(self.head, self.encoder.token_states(inputs), ids, chosen)
        return loss, {"mlm_accuracy": accuracy}


class SimCSE(Method):
    """Unsupervised SimCSE (Gao et al., 2021): a text and itself, through two dropout masks, are the positive
    pair; the other texts of the batch the negatives (NT-Xent). With ``token_cutoff`` each view also loses
    its own random share of the tokens (ConSERT, Yan et al., 2021), the only difference between the views
    on the ``text_bag`` encoder, which has no dropout; with ``mlm_weight`` the first view is corrupted as
    for MLM (``pretraining.mlm``) and predicting its chosen tokens joins the loss at that weight (the
    SimCSE paper's auxiliary objective, Transformer only)."""

    n_views = 2

    def __init__(self, encoder: nn.Module, params: PretrainingParams):
        super().__init__(encoder)
        own = params.simcse
        self.temperature, self.token_cutoff, self.mlm_weight = own.temperature, own.token_cutoff, own.mlm_weight
        self.masking = params.mlm
        self.projector = ProjectionHead(encoder.feature_dim, own.hidden_dim, own.projection_dim)
        self.head = token_prediction_head(encoder) if own.mlm_weight else None

    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = batch[:, 0].long(), batch[:, 1].long()
        if self.token_cutoff:
            first, second = cut_tokens(first, self.token_cutoff), cut_tokens(second, self.token_cutoff)
        return first, second

    def loss(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        first, second = inputs
        if self.head is None:
            # One pass over both copies: every row draws its own dropout mask.
            z1, z2 = self.projector(self.encoder(torch.cat([first, second]))).chunk(2)
            return nt_xent(z1, z2, self.temperature), {}
        corrupted, chosen = mask_tokens(first, self.masking, self.encoder.vocab_size)
        ids = torch.cat([corrupted, second])
        states = self.encoder.token_states(ids)
        z1, z2 = self.projector(self.encoder.pool(states, ids)).chunk(2)
        contrastive = nt_xent(z1, z2, self.temperature)
        predicted, accuracy = masked_prediction(self.head, states[: len(first)], first, chosen)
        return contrastive + self.mlm_weight * predicted, {"contrastive": float(contrastive), "mlm_accuracy": accuracy}


TEXT_METHODS: dict[str, type[Method]] = {"mlm": MLM, "simcse": SimCSE}
