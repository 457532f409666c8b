"""``finetune``: the whole encoder fine-tuned with a linear head on a few labels (semi-supervised)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from selfsup.config.base import StrictParams


class FinetuneParams(StrictParams):
    enabled: bool = True  # false: the stage writes no rows (quick runs)
    steps: int = Field(100, ge=1)  # optimizer steps of each fine-tuning run (2 encoders × each label fraction)
    batch_size: int = Field(64, ge=2)  # capped at the labelled images of the fraction
    learning_rate: float = Field(1e-3, gt=0)  # AdamW, a random-init encoder's and its fresh head's
    pretrained_lr_scale: float = Field(0.1, gt=0, le=1)  # LP-FT: a pretrained encoder and its probe-started head
    wise_ft_alpha: float = Field(0.5, gt=0, le=1)  # the pretrained model keeps start + alpha × (fine-tuned − start)
    weight_decay: float = Field(0.05, ge=0)
    time_budget_s: float | None = Field(None, gt=0)  # the whole stage, shared equally by its runs
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0  # the head's initial weights, the batch order and the views
