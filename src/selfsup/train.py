"""The pretraining loop: device, seed, schedule, prefetch, history.

Batches come from the view cache: for each image, ``method.n_views`` distinct
views out of the K cached ones, drawn anew each epoch. The next batch is
gathered on a background thread while the current one trains.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from selfsup.collapse import MONITOR_EVERY_STEPS, collapse_verdict, measure_spread
from selfsup.config import PretrainingParams
from selfsup.data.store import channel_stats
from selfsup.methods import METHODS, build_method
from selfsup.methods.masked_image import vit_required
from selfsup.models import Encoder, build_encoder
from selfsup.tokenizer import empty_codebook, fit_codebook

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "selfsup.encoder/1"


@dataclass
class TrainResult:
    checkpoint: dict  # {"format", "config", "state_dict", "training"}
    history: pd.DataFrame
    summary: dict


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def encoder_config(views: np.ndarray, params: PretrainingParams) -> dict:
    """The config that rebuilds the encoder: architecture plus input statistics."""
    channels, height, width = views.shape[-3:]
    mean, std = channel_stats(views)
    return {
        "backbone": params.backbone,
        "in_channels": int(channels),
        "image_size": [int(height), int(width)],
        "backbone_params": getattr(params, params.backbone).model_dump(mode="json"),
        "mean": mean,
        "std": std,
    }


def random_encoder(config: dict, seed: int) -> Encoder:
    """A randomly initialised encoder of the given architecture, reproducible by seed."""
    torch.manual_seed(seed)
    return build_encoder(config)


def tokenizer_codebook(views: np.ndarray, params: PretrainingParams) -> np.ndarray:
    """The visual-token codebook of a method that uses one (BEiT); an empty one, at no cost, otherwise."""
    if not METHODS[params.method].uses_codebook:
        return empty_codebook(views.shape[2])
    patch_size = getattr(getattr(params, params.backbone), "patch_size", None)
    if patch_size is None:
        raise vit_required(params.method, params.backbone)
    tokenizer = getattr(params, params.method)
    logger.info(
        "Fitting a %d-word k-means tokenizer on %d×%d patches", tokenizer.codebook_size, patch_size, patch_size
    )
    return fit_codebook(
        views, patch_size, tokenizer.codebook_size, tokenizer.tokenizer_patches,
        tokenizer.tokenizer_iterations, params.seed,
    )


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier: linear warmup to 1, then cosine decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _make_optimizer(model: torch.nn.Module, params: PretrainingParams) -> torch.optim.Optimizer:
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
    return torch.optim.AdamW(groups, lr=params.learning_rate)


def _epoch_batches(
    views: np.ndarray, n_views: int, batch_size: int, generator: torch.Generator
) -> Iterator[np.ndarray]:
    """Per step, the flat rows of ``views.reshape(N*K, ...)`` to gather: (B, n_views)."""
    n, k = views.shape[:2]
    order = torch.randperm(n, generator=generator).numpy()
    choice = torch.rand(n, k, generator=generator).argsort(dim=1)[:, :n_views].numpy()
    for start in range(0, n - batch_size + 1, batch_size):
        images = order[start : start + batch_size]
        yield images[:, None] * k + choice[images]


def _gather(flat_views: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    batch = flat_views[rows.reshape(-1)]
    return torch.from_numpy(batch).view(*rows.shape, *batch.shape[1:])


def _prefetched(loader, batches: Iterator[np.ndarray]) -> Iterator[torch.Tensor]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for rows in batches:
            upcoming = pool.submit(loader, rows)
            if pending is not None:
                yield pending.result()
            pending = upcoming
        if pending is not None:
            yield pending.result()


class StepPlan:
    """How many steps the run takes, and the learning-rate multiplier at each.

    With a time budget the total is unknown at the start: after
    ``CALIBRATION_STEPS`` steps it is set from the measured seconds per step so
    that the cosine schedule ends when the budget does. ``epochs`` stays the cap.
    """

    CALIBRATION_STEPS = 10

    def __init__(self, steps_per_epoch: int, params: PretrainingParams):
        self.max_steps = steps_per_epoch * params.epochs
        self.total_steps = self.max_steps
        self.warmup_steps = min(self.max_steps, max(1, round(params.warmup_epochs * steps_per_epoch)))
        self.budget_s = params.time_budget_s

    def lr_factor(self, step: int) -> float:
        return warmup_cosine(step, self.warmup_steps, self.total_steps)

    def after_step(self, steps_done: int, elapsed_s: float) -> str | None:
        """Why to stop after ``steps_done`` steps, or None to go on."""
        if self.budget_s is not None:
            if elapsed_s >= self.budget_s:
                return "time_budget"
            if steps_done == self.CALIBRATION_STEPS:
                affordable = int(self.budget_s / (elapsed_s / steps_done))
                self.total_steps = max(steps_done + 1, min(self.max_steps, affordable))
                self.warmup_steps = min(self.warmup_steps, max(1, self.total_steps // 10))
                logger.info(
                    "Time budget %.0f s: planned %d steps (%.3f s/step measured)",
                    self.budget_s, self.total_steps, elapsed_s / steps_done,
                )
        if steps_done >= self.total_steps:
            return "time_budget" if self.total_steps < self.max_steps else "epochs"
        return None


def _check_fits(n_images: int, n_cached: int, method, params: PretrainingParams) -> None:
    if n_images < params.batch_size:
        raise ValueError(
            f"pretraining.batch_size={params.batch_size} is larger than the {n_images} training images; "
            "lower pretraining.batch_size"
        )
    if n_cached < method.n_views:
        raise ValueError(
            f"{params.method} needs {method.n_views} views per image, the view cache has {n_cached}; "
            "raise augmentation.views_per_image"
        )


def pretrain(views: np.ndarray, params: PretrainingParams, codebook: np.ndarray | None = None) -> TrainResult:
    """Train ``params.method`` on cached views uint8 (N, K, C, H, W).

    ``codebook`` is the output of ``tokenizer_codebook``; when None it is fitted here.
    """
    n, k = views.shape[:2]
    seed_everything(params.seed)
    device = resolve_device(params.device)
    config = encoder_config(views, params)
    if codebook is None:
        codebook = tokenizer_codebook(views, params)
    method = build_method(build_encoder(config), params, codebook)
    _check_fits(n, k, method, params)
    memory_format = torch.channels_last if params.channels_last else torch.contiguous_format
    method = method.to(device, memory_format=memory_format)
    optimizer = _make_optimizer(method, params)
    plan = StepPlan(n // params.batch_size, params)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, plan.lr_factor)
    generator = torch.Generator().manual_seed(params.seed)
    flat_views = views.reshape(n * k, *views.shape[2:])

    logger.info(
        "Pretraining %s on %s: %d images, batch %d, at most %d epochs × %d steps%s",
        params.method, device, n, params.batch_size, params.epochs, n // params.batch_size,
        f", time budget {params.time_budget_s:.0f} s" if params.time_budget_s else "",
    )
    records, spreads = [], []
    step, epoch, stopped_by = 0, 0, None
    started = last_step_end = time.perf_counter()
    method.train()
    with tqdm(total=plan.total_steps, desc=f"pretraining {params.method}", unit="step", disable=None) as bar:
        while stopped_by is None:
            batches = _epoch_batches(views, method.n_views, params.batch_size, generator)
            for batch in _prefetched(lambda rows: _gather(flat_views, rows), batches):
                batch = batch.to(device, non_blocking=True)
                b, v = batch.shape[:2]
                images = batch.flatten(0, 1).float().div_(255.0).contiguous(memory_format=memory_format)
                loss, logs = method.loss(method.views(images.view(b, v, *images.shape[1:])))
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise FloatingPointError(f"pretraining loss became {loss_value} at step {step}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                lr = optimizer.param_groups[0]["lr"]
                schedule.step()
                method.on_step_end(step, plan.total_steps)
                now = time.perf_counter()
                records.append(
                    {"step": step, "epoch": epoch, "loss": loss_value, "lr": lr,
                     "images_per_s": b / (now - last_step_end), **logs}
                )
                last_step_end = now
                step += 1
                stopped_by = plan.after_step(step, now - started)
                if step % MONITOR_EVERY_STEPS == 0 or stopped_by:
                    spreads.append((step - 1, measure_spread(method.encoder, images.view(b, v, *images.shape[1:])[:, 0])))
                    records[-1]["embedding_std"] = spreads[-1][1]
                bar.total = plan.total_steps
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", epoch=epoch)
                if stopped_by:
                    break
            epoch += 1
    wall_time = time.perf_counter() - started
    history = pd.DataFrame.from_records(records)
    summary = {
        "method": params.method,
        "backbone": params.backbone,
        "epochs": round(step / (n // params.batch_size), 3),
        "steps": step,
        "batch_size": params.batch_size,
        "seed": params.seed,
        "device": str(device),
        "wall_time_s": wall_time,
        "time_budget_s": params.time_budget_s,
        "images_per_s": step * params.batch_size / wall_time if wall_time > 0 else float("nan"),
        "stopped_by": stopped_by,
        "final_loss": float(history["loss"].iloc[-1]),
        **collapse_verdict(spreads),
    }
    logger.info(
        "Pretraining stopped by %s after %d steps, %.1f s (%.0f images/s)",
        stopped_by, step, wall_time, summary["images_per_s"],
    )
    encoder_cpu = method.encoder.to("cpu", memory_format=torch.contiguous_format)
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "config": config,
        "state_dict": {name: t.detach().clone() for name, t in encoder_cpu.state_dict().items()},
        "training": summary,
    }
    return TrainResult(checkpoint, history, summary)


def encoder_from_checkpoint(checkpoint: dict) -> Encoder:
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"not a selfsup encoder checkpoint: format {checkpoint.get('format')!r}, expected {CHECKPOINT_FORMAT!r}"
        )
    encoder = build_encoder(checkpoint["config"])
    encoder.load_state_dict(checkpoint["state_dict"])
    return encoder.eval()
