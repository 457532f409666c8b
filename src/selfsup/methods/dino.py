"""DINO (Caron et al., 2021): self-distillation to a momentum teacher, with centring and sharpening.

With multi-crop (``local_crops``) the student sees every view, the teacher only the two
global ones; the head's last layer gets no update in the first ``freeze_last_layer_epochs``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.config import DINOParams
from selfsup.data.training_views import Batch, every_view
from selfsup.distributed import gather
from selfsup.losses import dino_cross_entropy
from selfsup.methods.base import Method, drop_gradients, local_crops_of
from selfsup.methods.momentum import cosine_momentum, ema_update, momentum_copy
from selfsup.models import Encoder, float32_linear


class UnitRowLinear(nn.Module):
    """A bias-free Linear whose weight rows are unit vectors in the forward pass, in float32.

    This is weight normalisation with the gain fixed at 1 (DINO's ``norm_last_layer``); its
    logits are sharpened by a teacher temperature of 0.04, too sharp for bf16.
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(nn.init.trunc_normal_(torch.empty(out_dim, in_dim), std=0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return float32_linear(x, F.normalize(self.weight.float(), dim=1))


class DINOHead(nn.Module):
    """A 3-layer GELU MLP to a bottleneck, L2-normalised, then a weight-normalised layer to ``out_dim``.

    ``batch_norm`` puts a BatchNorm after each hidden Linear (the paper code's ``use_bn_in_head``).
    """

    def __init__(self, in_dim: int, hidden_dim: int, bottleneck_dim: int, out_dim: int, batch_norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(2):
            layers += [nn.Linear(dim, hidden_dim), *([nn.BatchNorm1d(hidden_dim)] if batch_norm else []), nn.GELU()]
            dim = hidden_dim
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden_dim, bottleneck_dim))
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):  # the initialisation of the paper's code
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.last_layer = UnitRowLinear(bottleneck_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(F.normalize(self.mlp(x), dim=1))


def warmup_temperature(progress: float, start: float, end: float, warmup_fraction: float) -> float:
    """Linear from ``start`` to ``end`` over the first ``warmup_fraction`` of training, then ``end``."""
    if progress >= warmup_fraction:
        return end
    return start + (end - start) * progress / warmup_fraction


class DINO(Method):
    n_views = 2

    def __init__(self, encoder: Encoder, params: DINOParams):
        super().__init__(encoder)
        self.params = params
        self.head = DINOHead(
            encoder.feature_dim, params.hidden_dim, params.bottleneck_dim, params.out_dim, params.batch_norm_in_head
        )
        self.teacher_encoder = momentum_copy(encoder)
        self.teacher_head = momentum_copy(self.head)
        self.local_crops = local_crops_of(params)
        self.register_buffer("center", torch.zeros(1, params.out_dim))
        self.teacher_temperature = self._teacher_temperature(0.0)
        self._teacher_mean: torch.Tensor | None = None

    def _teacher_temperature(self, progress: float) -> float:
        p = self.params
        start, end = p.teacher_temperature_start, p.teacher_temperature
        return warmup_temperature(progress, start, end, p.teacher_warmup_fraction)

    def get_extra_state(self) -> dict:
        # The scheduled temperature is no tensor; a training checkpoint must still restore it.
        return {"teacher_temperature": self.teacher_temperature}

    def set_extra_state(self, state: dict) -> None:
        self.teacher_temperature = state["teacher_temperature"]

    def views(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """The two global views, then the local views."""
        return every_view(batch)

    def loss(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        global_views, local_views = torch.cat(inputs[:2]), inputs[2:]
        features = self.encoder(global_views)
        if local_views:  # another size: its own encoder pass; one head pass, so BN sees every view
            features = torch.cat([features, self.encoder(torch.cat(local_views))])
        student = self.head(features)
        with torch.no_grad():
            teacher = self.teacher_head(self.teacher_encoder(global_views))
        loss = dino_cross_entropy(
            student.split(len(inputs[0])),
            teacher.chunk(2),
            self.center,
            self.params.student_temperature,
            self.teacher_temperature,
        )
        self._teacher_mean = gather(teacher).float().mean(dim=0, keepdim=True)  # the global batch's, on every rank
        return loss, {"teacher_temperature": self.teacher_temperature}

    def before_optimizer_step(self, epoch: int) -> None:
        if epoch < self.params.freeze_last_layer_epochs:
            drop_gradients(self.head.last_layer.parameters())

    def on_step_end(self, step: int, total_steps: int) -> None:
        momentum = cosine_momentum(self.params.momentum, step, total_steps)
        ema_update(self.teacher_encoder, self.encoder, momentum)
        ema_update(self.teacher_head, self.head, momentum)
        if self._teacher_mean is not None:
            self.center.lerp_(self._teacher_mean, 1.0 - self.params.center_momentum)
            self._teacher_mean = None
        self.teacher_temperature = self._teacher_temperature((step + 1) / max(1, total_steps))
