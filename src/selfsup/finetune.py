"""Fine-tuning the whole encoder with a linear head on a few labels (the semi-supervised protocol).

The head, for every encoder and label fraction: a batch-norm without affine
parameters then a linear layer on the encoder's features (a linear classifier at
test time, whatever the features' scale). AdamW, cosine decay from the run's rate
to zero over ``steps`` steps, no warmup; each step one freshly augmented view (the
training views' augmentations, at the stored image size that the test images are
scored at) of ``batch_size`` labelled images, batch norm in train mode.

A pretrained encoder is fine-tuned as LP-FT (Kumar et al. 2022): its head starts as
the linear probe of its frozen features on the same labels, so that the model begins
where the probe is, and the whole classifier learns at ``pretrained_lr_scale`` times
``learning_rate``, adjusting the features rather than overwriting them with a random
head's first gradients. The weights it keeps are WiSE-FT's (Wortsman et al. 2022):
``wise_ft_alpha`` of the way from that start to the fine-tuned weights, which keeps
what the probe knew where a few labels overfit. A random-init encoder has no
features worth a probe or worth keeping: a fresh head, everything at
``learning_rate``, its fine-tuned weights kept as they end, which makes it the
stronger baseline, not a handicapped one (a probe-started head on random features
is a poor start: benchmarks/RESULTS.md, run 9).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.augment import augment_batch
from selfsup.config import AugmentationParams, FinetuneParams
from selfsup.label_fractions import label_fraction
from selfsup.models import Encoder
from selfsup.probe import fit_linear_probe
from selfsup.schedule import warmup_cosine

logger = logging.getLogger(__name__)

EVAL_BATCH = 512
ABSENT_CLASS_LOGIT = -30.0  # a probe-started head's logit for a class its labels lack: never predicted
CALIBRATION_STEPS = 10  # with a time budget, the steps timed before the schedule's length is set


def finetune_key(fraction: float) -> str:
    """The metric's name: ``finetune_1pct`` beside the probe's ``linear_1pct``."""
    return f"finetune_{fraction * 100:g}pct"


@dataclass(frozen=True)
class FinetuneRun:
    """How one fine-tuning run went: its labels, steps, time, what stopped it, and its test accuracy."""

    labels: int
    steps: int
    wall_time_s: float
    stopped_by: str  # "steps" or "time_budget"
    final_loss: float
    accuracy: float


class Classifier(nn.Module):
    def __init__(self, encoder: Encoder, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(
            nn.BatchNorm1d(encoder.feature_dim, affine=False), nn.Linear(encoder.feature_dim, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def start_from_probe(self, images: np.ndarray, labels: np.ndarray, device: torch.device) -> None:
        """The head becomes the linear probe of the encoder's features of ``images`` (unaugmented):
        the batch norm holds the probe's standardisation, the linear layer its weights."""
        probe = fit_linear_probe(model_outputs(self.encoder, images, device), labels)
        norm, linear = self.head
        weights = torch.zeros_like(linear.weight)
        intercepts = torch.full_like(linear.bias, ABSENT_CLASS_LOGIT)
        classes = torch.as_tensor(probe.classes, device=weights.device)
        if len(probe.classes) == 2:  # scikit-learn's binary model: one logit, for the second class
            weights[classes[1]] = probe.weights[0].to(weights)
            intercepts[classes] = torch.stack([torch.zeros(()), probe.intercepts[0].cpu()]).to(weights)
        else:
            weights[classes], intercepts[classes] = probe.weights.to(weights), probe.intercepts.to(weights)
        variance = probe.scale.square().to(weights)
        with torch.no_grad():  # the norm divides by sqrt(variance + eps), the probe by its scale alone
            norm.running_mean.copy_(probe.mean)
            norm.running_var.copy_(variance)
            linear.weight.copy_(weights * ((variance + norm.eps).sqrt() / probe.scale.to(weights)))
            linear.bias.copy_(intercepts)


def endless_batches(n: int, batch_size: int, generator: torch.Generator):
    """Endless full batches of positions in ``range(n)``: one shuffled pass after another."""
    order = torch.empty(0, dtype=torch.long)
    while True:
        while len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        yield order[:batch_size].numpy()
        order = order[batch_size:]


def finetune(
    encoder: Encoder,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    params: FinetuneParams,
    augmentation: AugmentationParams,
    pretrained: bool,
    device: torch.device,
    budget_s: float | None = None,
) -> FinetuneRun:
    """Fine-tune ``encoder`` (modified in place) and a linear head on uint8 (N, C, H, W)
    ``train_images`` and their labels, as LP-FT when ``pretrained``; score the test images."""
    torch.manual_seed(params.seed)
    generator = torch.Generator().manual_seed(params.seed)
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    model = Classifier(encoder, n_classes).to(device)
    started = time.perf_counter()
    learning_rate = params.learning_rate
    if pretrained:
        model.start_from_probe(train_images, train_labels, device)
        probe_state = {name: value.clone() for name, value in model.state_dict().items()}
        learning_rate *= params.pretrained_lr_scale
        if budget_s is not None:  # the probe's seconds come out of the run's share
            budget_s -= time.perf_counter() - started
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=params.weight_decay)
    size = tuple(train_images.shape[-2:])
    targets = torch.from_numpy(train_labels.astype(np.int64))
    order = endless_batches(len(train_images), min(params.batch_size, len(train_images)), generator)
    model.train()
    start, steps, stopped_by, loss = time.perf_counter(), 0, "steps", torch.tensor(float("nan"))
    planned = params.steps
    for step in range(params.steps):
        elapsed = time.perf_counter() - start
        if budget_s is not None and step == CALIBRATION_STEPS:  # plan the cosine to end with the budget
            planned = max(step + 1, min(params.steps, int(budget_s * step / elapsed)))
        if step >= planned or (budget_s is not None and elapsed > budget_s):
            stopped_by = "time_budget"
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * warmup_cosine(step, 0, planned)
        positions = next(order)
        views = augment_batch(torch.from_numpy(train_images[positions]), augmentation, generator, size)
        loss = F.cross_entropy(model(views.to(device)), targets[positions].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps = step + 1
    if pretrained:
        model.load_state_dict(interpolated(probe_state, model.state_dict(), params.wise_ft_alpha))
    wall_time = time.perf_counter() - started
    accuracy = float((predict(model, test_images, device) == test_labels).mean())
    return FinetuneRun(len(train_images), steps, round(wall_time, 2), stopped_by, float(loss.detach()), accuracy)


def interpolated(start: dict, tuned: dict, alpha: float) -> dict:
    """WiSE-FT's weights (Wortsman et al. 2022): ``(1 - alpha) * start + alpha * tuned`` for every
    floating-point entry (batch-norm statistics included), counters as ``tuned`` has them."""
    return {
        name: torch.lerp(start[name], value, alpha) if value.is_floating_point() else value
        for name, value in tuned.items()
    }


@torch.inference_mode()
def model_outputs(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    """``model``'s outputs (in eval mode; its mode restored) for uint8 (N, C, H, W) ``images``. Not
    ``selfsup.features.embed``: that converts the model to channels-last under inference mode, which
    leaves parameters that autograd refuses when fine-tuning continues."""
    training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(images), EVAL_BATCH):
        batch = torch.from_numpy(np.array(images[start : start + EVAL_BATCH])).to(device).float().div_(255.0)
        outputs.append(model(batch).float().cpu().numpy())
    model.train(training)
    return np.concatenate(outputs)


def predict(model: nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    """The classes ``model`` gives uint8 (N, C, H, W) ``images``."""
    return model_outputs(model, images, device).argmax(axis=1)


def finetune_protocol(
    encoders: dict[str, tuple[Encoder, bool]],
    images: np.ndarray,
    train_positions: np.ndarray,
    train_labels: np.ndarray,
    test_positions: np.ndarray,
    test_labels: np.ndarray,
    label_fractions: tuple[float, ...],
    label_seed: int,
    params: FinetuneParams,
    augmentation: AugmentationParams,
    device: torch.device,
) -> dict:
    """Each encoder (``name → (encoder, pretrained)``) fine-tuned from its initial weights on
    each stratified label fraction (the probes' subsets): ``{name: {finetune_<p>pct: accuracy}}``
    for every encoder, and ``finetune_runs``: ``{name: {finetune_<p>pct: how the run went}}``."""
    initial = {name: {k: v.clone() for k, v in encoder.state_dict().items()} for name, (encoder, _) in encoders.items()}
    subsets = {fraction: label_fraction(train_labels, fraction, label_seed) for fraction in label_fractions}
    test_images = images[test_positions]
    n_runs = len(encoders) * len(subsets)
    budget_s = params.time_budget_s / n_runs if params.time_budget_s is not None else None
    metrics: dict = {name: {} for name in encoders}
    metrics["finetune_runs"] = {name: {} for name in encoders}
    for name, (encoder, pretrained) in encoders.items():
        for fraction, subset in subsets.items():
            encoder.load_state_dict(initial[name])
            run = finetune(
                encoder,
                images[train_positions[subset]],
                train_labels[subset],
                test_images,
                test_labels,
                params,
                augmentation,
                pretrained,
                device,
                budget_s,
            )
            key = finetune_key(fraction)
            metrics[name][key] = run.accuracy
            metrics["finetune_runs"][name][key] = asdict(run)
            logger.info("fine-tuned %s on %d labels: %s", name, run.labels, asdict(run))
    return metrics
