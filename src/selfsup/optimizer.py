"""The optimizer of pretraining: SGD (Nesterov) or fused AdamW, without weight decay on norms and biases."""

from __future__ import annotations

import torch

from selfsup.config import PretrainingParams


def make_optimizer(model: torch.nn.Module, params: PretrainingParams) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:  # momentum (EMA) copies are not optimised
            continue
        # Norm layers and biases are not weight-decayed.
        (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": params.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if params.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=params.learning_rate, momentum=0.9, nesterov=True)
    # One fused kernel for all parameters (CPU and CUDA, torch >= 2.4) instead of a loop over tensors.
    return torch.optim.AdamW(groups, lr=params.learning_rate, fused=True)
