"""The pretraining loop: device, precision, processes, schedule, checkpoints, history.

Batches come from one of two sources (``augmentation.mode``): the view cache,
uint8 (N, K, C, H, W), where each image gives ``method.n_views`` distinct views
out of its K cached ones, drawn anew each epoch (``cached_view_batches``); or
``OnTheFlyViews``, where every batch's views are generated from the image store
on the training device (``on_the_fly_batches``). Either way the next batch is
prepared on a background thread while the current one trains.

``pretraining.batch_size`` is the global batch: with several processes
(``pretraining.distributed``) every rank trains on its equal share of each
step's images, and the losses see the whole batch (``selfsup.distributed``), so
the run computes what one process would on the same batch.

With ``pretraining.checkpoint.directory`` set, the full training state is saved
atomically every ``every_steps`` steps and at the end of every epoch, in a
folder keyed by the run (``selfsup.checkpoint``); the same call after a crash
resumes from the newest checkpoint, bit for bit on CPU. A run that finishes
removes its checkpoints.
"""

from __future__ import annotations

import itertools
import logging
import math
import mmap
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from selfsup import distributed
from selfsup.checkpoint import TRAINING_STATE_FORMAT, CheckpointFolder, rng_state, run_key, set_rng_state
from selfsup.collapse import MONITOR_EVERY_STEPS, collapse_verdict, measure_spread
from selfsup.config import PretrainingParams
from selfsup.data.on_the_fly import OnTheFlyViews, batch_seed
from selfsup.data.store import channel_stats, content_hash
from selfsup.methods import METHODS, Method, build_method
from selfsup.methods.masked_image import vit_required
from selfsup.models import Encoder, build_encoder
from selfsup.tokenizer import empty_codebook, fit_codebook

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "selfsup.encoder/1"

# What ``pretrain`` trains on: cached views uint8 (N, K, C, H, W), or views generated per batch.
TrainingViews = np.ndarray | OnTheFlyViews

# Images whose on-the-fly views give the encoder's input statistics.
STATS_SAMPLE_IMAGES = 4096


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


def encoder_config(views: TrainingViews, params: PretrainingParams) -> dict:
    """The config that rebuilds the encoder: architecture plus input statistics (of the views;
    of a sample of on-the-fly views)."""
    if isinstance(views, OnTheFlyViews):
        channels, height, width = views.view_shape
        mean, std = channel_stats(views.sample(STATS_SAMPLE_IMAGES, 2))
    else:
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


def tokenizer_codebook(views: TrainingViews, params: PretrainingParams) -> np.ndarray:
    """The visual-token codebook of a method that uses one (BEiT); an empty one, at no cost, otherwise.

    On-the-fly views are sampled: one view each of as many images as the tokenizer needs patches.
    """
    channels = views.view_shape[0] if isinstance(views, OnTheFlyViews) else views.shape[2]
    if not METHODS[params.method].uses_codebook:
        return empty_codebook(channels)
    patch_size = getattr(getattr(params, params.backbone), "patch_size", None)
    if patch_size is None:
        raise vit_required(params.method, params.backbone)
    tokenizer = getattr(params, params.method)
    if isinstance(views, OnTheFlyViews):
        _, height, width = views.view_shape
        per_view = max(1, (height // patch_size) * (width // patch_size))
        views = views.sample(math.ceil(tokenizer.tokenizer_patches / per_view), 1, seed=params.seed)
    logger.info("Fitting a %d-word k-means tokenizer on %d×%d patches", tokenizer.codebook_size, patch_size, patch_size)
    return fit_codebook(
        views,
        patch_size,
        tokenizer.codebook_size,
        tokenizer.tokenizer_patches,
        tokenizer.tokenizer_iterations,
        params.seed,
    )


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier: linear warmup to 1, then cosine decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def cpu_has_bf16_units() -> bool:
    """AMX tiles (Intel Sapphire Rapids and later) or AVX-512 BF16 (AMD Zen 4 and later): the CPUs
    where bf16 convolutions beat float32 (a SimCLR step 1.7-2x faster on both kinds measured)."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)


def _uses_bf16(device: torch.device, params: PretrainingParams) -> bool:
    if device.type == "cuda":
        return params.mixed_precision
    if device.type == "cpu" and params.mixed_precision_cpu:
        if cpu_has_bf16_units():
            return True
        logger.warning(
            "pretraining.mixed_precision_cpu: this CPU has no bf16 units (AMX or AVX-512 BF16); training in float32"
        )
    return False


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
    # One fused kernel for all parameters (CPU and CUDA, torch >= 2.4) instead of a loop over tensors.
    return torch.optim.AdamW(groups, lr=params.learning_rate, fused=True)


def _epoch_batches(
    views: np.ndarray, n_views: int, batch_size: int, generator: torch.Generator
) -> Iterator[np.ndarray]:
    """Per step, this rank's flat rows of ``views.reshape(N*K, ...)`` to gather: (B / world, n_views).

    Every rank draws the same epoch order from the same generator and takes its
    slice of each global batch, so it reads only its shard of the cache.
    """
    n, k = views.shape[:2]
    share = batch_size // distributed.world_size()
    first = distributed.rank() * share
    order = torch.randperm(n, generator=generator).numpy()
    choice = torch.rand(n, k, generator=generator).argsort(dim=1)[:, :n_views].numpy()
    for start in range(0, n - batch_size + 1, batch_size):
        images = order[start + first : start + first + share]
        yield images[:, None] * k + choice[images]


def _gather(flat_views: np.ndarray, rows: np.ndarray, pin: bool) -> torch.Tensor:
    batch = torch.from_numpy(flat_views[rows.reshape(-1)])
    batch = batch.view(*rows.shape, *batch.shape[1:])
    return batch.pin_memory() if pin else batch


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


def cached_view_batches(
    views: np.ndarray,
    n_views: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    memory_format: torch.memory_format,
    skip: int = 0,
) -> Iterator[torch.Tensor]:
    """One epoch of this rank's float (B, V, C, H, W) batches in [0, 1] on ``device``, from the view cache.

    ``skip`` drops the epoch's first batches (a resumed epoch) without reading them.
    The batch source of cache mode; ``on_the_fly_batches`` is the other.
    """
    flat_views = views.reshape(-1, *views.shape[2:])
    rows = itertools.islice(_epoch_batches(views, n_views, batch_size, generator), skip, None)
    pin = device.type == "cuda"
    for batch in _prefetched(lambda r: _gather(flat_views, r, pin), rows):
        batch = batch.to(device, non_blocking=True)
        b, v = batch.shape[:2]
        images = batch.flatten(0, 1).float().div_(255.0).contiguous(memory_format=memory_format)
        yield images.view(b, v, *images.shape[1:])


def on_the_fly_batches(
    source: OnTheFlyViews,
    n_views: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    memory_format: torch.memory_format,
    epoch: int,
    skip: int = 0,
) -> Iterator[torch.Tensor]:
    """One epoch of this rank's float (B, V, C, H, W) batches in [0, 1] on ``device``, generated per batch.

    The epoch order comes from ``generator`` (as in cache mode); each batch's uint8
    images are read from the store on a background thread, moved to ``device`` and
    augmented there with a generator seeded by ``(augmentation.seed, epoch, step,
    rank)``, so a resumed epoch (``skip``) regenerates the same views. On CUDA the
    next batch is augmented on a side stream while the current one trains.
    """
    n = len(source)
    share = batch_size // distributed.world_size()
    rank = distributed.rank()
    first = rank * share
    order = torch.randperm(n, generator=generator).numpy()
    cuda = device.type == "cuda"
    side = torch.cuda.Stream(device) if cuda else None

    def make(step: int) -> tuple[torch.Tensor, object]:
        start = step * batch_size + first
        images = source.gather(order[start : start + share])
        if cuda:
            images = images.pin_memory()
        with torch.cuda.stream(side) if cuda else nullcontext():
            images = images.to(device, non_blocking=True)
            views_rng = torch.Generator(device).manual_seed(batch_seed(source.params.seed, epoch, step, rank))
            views = source.generate(images, n_views, views_rng)
            b, v = views.shape[:2]
            flat = views.flatten(0, 1).contiguous(memory_format=memory_format)
            ready = side.record_event() if cuda else None
        return flat.view(b, v, *flat.shape[1:]), ready

    for batch, ready in _prefetched(make, iter(range(skip, n // batch_size))):
        if ready is not None:
            current = torch.cuda.current_stream(device)
            current.wait_event(ready)
            batch.record_stream(current)
        yield batch


def _epoch_views(
    views: TrainingViews,
    n_views: int,
    params: PretrainingParams,
    generator: torch.Generator,
    device: torch.device,
    memory_format: torch.memory_format,
    epoch: int,
    skip: int,
) -> Iterator[torch.Tensor]:
    if isinstance(views, OnTheFlyViews):
        return on_the_fly_batches(views, n_views, params.batch_size, generator, device, memory_format, epoch, skip)
    return cached_view_batches(views, n_views, params.batch_size, generator, device, memory_format, skip=skip)


def _size(views: TrainingViews) -> tuple[int, int | None]:
    """(training images, views per image); None views: unbounded (on the fly)."""
    if isinstance(views, OnTheFlyViews):
        return len(views), None
    return int(views.shape[0]), int(views.shape[1])


class StepPlan:
    """How many steps the run takes, and the learning-rate multiplier at each.

    With a time budget the total is unknown at the start: after
    ``CALIBRATION_STEPS`` steps it is set from the measured seconds per step so
    that the cosine schedule ends when the budget does. ``epochs`` stays the cap.
    A resumed run keeps the plan recorded in its checkpoint.
    """

    CALIBRATION_STEPS = 10

    def __init__(self, steps_per_epoch: int, params: PretrainingParams):
        self.max_steps = steps_per_epoch * params.epochs
        self.total_steps = self.max_steps
        self.warmup_steps = min(self.max_steps, max(1, round(params.warmup_epochs * steps_per_epoch)))
        self.budget_s = params.time_budget_s
        self._calibrated_at: tuple[int, float] | None = None  # (steps, seconds) at the first plan

    def lr_factor(self, step: int) -> float:
        return warmup_cosine(step, self.warmup_steps, self.total_steps)

    def after_step(self, steps_done: int, elapsed_s: float) -> str | None:
        """Why to stop after ``steps_done`` steps, or None to go on."""
        if self.budget_s is not None:
            if elapsed_s >= self.budget_s:
                return "time_budget"
            if self._replans_at(steps_done):
                self._replan(steps_done, elapsed_s)
        if steps_done >= self.total_steps:
            return "time_budget" if self.total_steps < self.max_steps else "epochs"
        return None

    def _replans_at(self, steps_done: int) -> bool:
        """At 10, 20, 40, 80, … steps: the first steps are slow (allocation, caches), so the
        first plan is refined with the pace measured since, while the schedule is still early."""
        multiple, remainder = divmod(steps_done, self.CALIBRATION_STEPS)
        return remainder == 0 and multiple > 0 and multiple & (multiple - 1) == 0

    def _replan(self, steps_done: int, elapsed_s: float) -> None:
        if self._calibrated_at is None:
            self._calibrated_at = (steps_done, elapsed_s)
            seconds_per_step = elapsed_s / steps_done
        else:
            since_steps, since_s = self._calibrated_at
            seconds_per_step = (elapsed_s - since_s) / (steps_done - since_steps)
        affordable = steps_done + round((self.budget_s - elapsed_s) / seconds_per_step)
        self.total_steps = max(steps_done + 1, min(self.max_steps, affordable))
        if steps_done == self.CALIBRATION_STEPS:
            self.warmup_steps = min(self.warmup_steps, max(1, self.total_steps // 10))
        logger.info(
            "Time budget %.0f s: planned %d steps (%.3f s/step measured)",
            self.budget_s,
            self.total_steps,
            seconds_per_step,
        )


def _check_fits(n_images: int, n_cached: int | None, method, params: PretrainingParams) -> None:
    if n_images < params.batch_size:
        raise ValueError(
            f"pretraining.batch_size={params.batch_size} is larger than the {n_images} training images; "
            "lower pretraining.batch_size"
        )
    if n_cached is not None and n_cached < method.n_views:
        raise ValueError(
            f"{params.method} needs {method.n_views} views per image, the view cache has {n_cached}; "
            "raise augmentation.views_per_image"
        )


def pretrain(
    views: TrainingViews, params: PretrainingParams, codebook: np.ndarray | None = None, data_key: str | None = None
) -> TrainResult:
    """Train ``params.method`` on cached views uint8 (N, K, C, H, W), or on views generated per
    batch (``OnTheFlyViews``: the image store, the training rows and the augmentation parameters).

    ``codebook`` is the output of ``tokenizer_codebook``; when None it is fitted here.
    ``data_key`` names the training data in the checkpoint key (the view cache's
    key); when None the views are hashed. With ``pretraining.distributed`` asking
    for more than one process, the workers are launched here and this returns
    once every rank has ended, with rank 0's result (the lowest rank of this
    machine on the others).
    """
    if codebook is None:
        codebook = tokenizer_codebook(views, params)
    if params.checkpoint.directory is not None and data_key is None:
        data_key = views.data_key if isinstance(views, OnTheFlyViews) else content_hash(views)
    layout = params.distributed
    if layout.world_size > 1 and not distributed.is_distributed():
        device = resolve_device(params.device)
        if device.type == "cuda" and layout.nproc_per_node > torch.cuda.device_count():
            raise ValueError(
                f"pretraining.distributed.nproc_per_node={layout.nproc_per_node} exceeds the "
                f"{torch.cuda.device_count()} CUDA devices here: one process per GPU"
            )
        logger.info(
            "Launching %d processes × %d node(s) (%s); batch %d = %d per process",
            layout.nproc_per_node,
            layout.nnodes,
            distributed.backend_for(device),
            params.batch_size,
            params.batch_size // layout.world_size,
        )
        return distributed.launch(
            _train_rank,
            (_shareable(views), params, codebook, data_key),
            nproc_per_node=layout.nproc_per_node,
            nnodes=layout.nnodes,
            node_rank=layout.node_rank,
            rdzv_endpoint=layout.rdzv_endpoint,
            backend=distributed.backend_for(device),
        )
    return _train(views, params, codebook, data_key)


def _shareable(views: TrainingViews):
    """What a worker process needs to read ``views``: a memory-mapped file is reopened, not copied."""
    if isinstance(views, OnTheFlyViews):
        return ("on_the_fly", _shareable(views.images), views.positions, views.params, views.data_key)
    if isinstance(views, np.memmap) and isinstance(views.base, mmap.mmap):
        return ("memmap", views.filename, views.dtype.str, views.shape, views.offset)
    return views


def _open_views(source) -> TrainingViews:
    if isinstance(source, tuple) and source[0] == "on_the_fly":
        _, images, positions, augmentation, key = source
        return OnTheFlyViews(_open_views(images), positions, augmentation, key=key)
    if isinstance(source, tuple) and source[0] == "memmap":
        _, filename, dtype, shape, offset = source
        return np.memmap(filename, dtype=np.dtype(dtype), mode="r", shape=shape, offset=offset)
    return source


def _train_rank(source, params: PretrainingParams, codebook: np.ndarray, data_key: str | None) -> TrainResult | None:
    """One worker of a distributed run; the lowest rank of each machine returns the result."""
    result = _train(_open_views(source), params, codebook, data_key)
    return result if int(os.environ.get("LOCAL_RANK", "0")) == 0 else None


@dataclass
class _Progress:
    """Where the run stands; with the model, optimizer and RNG states it is what a checkpoint holds."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    elapsed_s: float = 0.0
    records: list[dict] = field(default_factory=list)  # training_history rows so far
    spreads: list[tuple[int, float]] = field(default_factory=list)  # collapse monitor readings
    resumed_from: int | None = None


def _train(views: TrainingViews, params: PretrainingParams, codebook: np.ndarray, data_key: str | None) -> TrainResult:
    n, k = _size(views)
    world, is_rank0 = distributed.world_size(), distributed.rank() == 0
    seed_everything(params.seed)
    device = resolve_device(params.device)
    if device.type == "cuda" and distributed.is_distributed():
        device = torch.device("cuda", torch.cuda.current_device())
    config = encoder_config(views, params)
    method = build_method(build_encoder(config), params, codebook)
    _check_fits(n, k, method, params)
    if distributed.is_distributed():
        # The same initial weights everywhere, then each rank its own masks and noise.
        torch.manual_seed(params.seed + 1_000_003 * distributed.rank())
        if params.distributed.sync_batchnorm:
            method = distributed.synchronise_batch_norm(method, device)
    memory_format = torch.channels_last if params.channels_last else torch.contiguous_format
    method = method.to(device, memory_format=memory_format)
    optimizer = _make_optimizer(method, params)
    steps_per_epoch = n // params.batch_size
    plan = StepPlan(steps_per_epoch, params)
    generator = torch.Generator().manual_seed(params.seed)
    folder = _checkpoint_folder(params, data_key, codebook)
    progress = _resume(folder, method, optimizer, plan, generator) if folder is not None else _Progress()
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, plan.lr_factor, last_epoch=progress.step - 1)
    model = _parallel(method, device, params)

    logger.info(
        "Pretraining %s on %s%s: %d images, batch %d, at most %d epochs × %d steps%s",
        params.method,
        device,
        f" × {world} processes" if world > 1 else "",
        n,
        params.batch_size,
        params.epochs,
        steps_per_epoch,
        f", time budget {params.time_budget_s:.0f} s" if params.time_budget_s else "",
    )

    def save() -> None:
        if folder is None:
            return
        rng = _all_ranks(rng_state())  # a collective: every rank saves at the same steps
        if not is_rank0:
            return
        state = {
            "format": TRAINING_STATE_FORMAT,
            "step": progress.step,
            "epoch": progress.epoch,
            "step_in_epoch": progress.step_in_epoch,
            "elapsed_s": time.perf_counter() - started,
            "plan": {"total_steps": plan.total_steps, "warmup_steps": plan.warmup_steps},
            "method": method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "batch_order_rng": epoch_rng,
            "rng": rng,
            "records": progress.records,
            "spreads": [list(s) for s in progress.spreads],
        }
        folder.save(state, progress.step)

    records, spreads = progress.records, progress.spreads
    stopped_by = None
    started = time.perf_counter() - progress.elapsed_s
    last_step_end = time.perf_counter()
    use_bf16 = _uses_bf16(device, params)
    method.train()
    with tqdm(
        total=plan.total_steps,
        initial=progress.step,
        desc=f"pretraining {params.method}",
        unit="step",
        disable=None if is_rank0 else True,
    ) as bar:
        while stopped_by is None:
            epoch_rng = generator.get_state()
            batches = _epoch_views(
                views, method.n_views, params, generator, device, memory_format, progress.epoch, progress.step_in_epoch
            )
            for batch in batches:
                step = progress.step
                loss_value, logs = _optimise(model, optimizer, batch, use_bf16, params, step, progress.epoch, folder)
                lr = optimizer.param_groups[0]["lr"]
                schedule.step()
                method.on_step_end(step, plan.total_steps)
                now = time.perf_counter()
                records.append(
                    {
                        "step": step,
                        "epoch": progress.epoch,
                        "loss": loss_value,
                        "lr": lr,
                        "images_per_s": params.batch_size / (now - last_step_end),
                        **logs,
                    }
                )
                last_step_end = now
                progress.step += 1
                progress.step_in_epoch += 1
                elapsed = now - started
                if params.time_budget_s is not None:  # every rank must stop at the same step
                    elapsed = distributed.from_rank_zero(elapsed, device)
                stopped_by = plan.after_step(progress.step, elapsed)
                if progress.step % MONITOR_EVERY_STEPS == 0 or stopped_by:
                    spreads.append((step, measure_spread(method.encoder, batch[:, 0])))
                    records[-1]["embedding_std"] = spreads[-1][1]
                bar.total = plan.total_steps
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", epoch=progress.epoch)
                if stopped_by:
                    break
                if progress.step % params.checkpoint.every_steps == 0 and progress.step_in_epoch < steps_per_epoch:
                    save()
            if stopped_by is None:  # the epoch ran to its end
                progress.epoch += 1
                progress.step_in_epoch = 0
                epoch_rng = generator.get_state()
                save()
    wall_time = time.perf_counter() - started
    step = progress.step
    history = pd.DataFrame.from_records(records)
    summary = {
        "method": params.method,
        "backbone": params.backbone,
        "epochs": round(step / steps_per_epoch, 3),
        "steps": step,
        "batch_size": params.batch_size,
        "processes": world,
        "seed": params.seed,
        "device": str(device),
        "views": "on_the_fly" if isinstance(views, OnTheFlyViews) else "cache",
        "wall_time_s": wall_time,
        "time_budget_s": params.time_budget_s,
        "images_per_s": step * params.batch_size / wall_time if wall_time > 0 else float("nan"),
        "stopped_by": stopped_by,
        "resumed_from_step": progress.resumed_from,
        "final_loss": float(history["loss"].iloc[-1]),
        **collapse_verdict([tuple(s) for s in spreads]),
    }
    logger.info(
        "Pretraining stopped by %s after %d steps, %.1f s (%.0f images/s)",
        stopped_by,
        step,
        wall_time,
        summary["images_per_s"],
    )
    if folder is not None and is_rank0:
        folder.remove()  # finished: a rerun trains again instead of resuming
    encoder_cpu = method.encoder.to("cpu", memory_format=torch.contiguous_format)
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "config": config,
        "state_dict": {name: t.detach().clone() for name, t in encoder_cpu.state_dict().items()},
        "training": summary,
    }
    return TrainResult(checkpoint, history, summary)


def _optimise(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    use_bf16: bool,
    params: PretrainingParams,
    step: int,
    epoch: int,
    folder: CheckpointFolder | None,
) -> tuple[float, dict]:
    """One optimizer step; the global batch's mean loss. A non-finite loss stops before the update."""
    try:
        with torch.autocast(batch.device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext():
            loss, logs = model(batch)
        loss_value = distributed.mean_over_ranks(loss.detach().float()).item()
        if not math.isfinite(loss_value):
            raise _diverged(loss_value, step, epoch, params, folder)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    except RuntimeError as exc:
        if _is_out_of_memory(exc):
            raise _out_of_memory(exc, step, params, batch.device) from None
        raise
    return loss_value, logs


def _diverged(
    loss_value: float, step: int, epoch: int, params: PretrainingParams, folder: CheckpointFolder | None
) -> FloatingPointError:
    files = folder.files() if folder is not None else []
    kept = (
        f"the last good checkpoint, {files[-1]}, is kept"
        if files
        else "no checkpoint holds an earlier state (pretraining.checkpoint.directory keeps them)"
    )
    return FloatingPointError(
        f"pretraining loss became {loss_value} at step {step} (epoch {epoch}): the training diverged and was "
        f"stopped before the update. Lower pretraining.learning_rate (now {params.learning_rate}) or raise "
        f"pretraining.warmup_epochs (now {params.warmup_epochs}); {kept}"
    )


def _is_out_of_memory(exc: RuntimeError) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    message = str(exc)
    return "DefaultCPUAllocator: can't allocate memory" in message or "not enough memory" in message


def _out_of_memory(exc: RuntimeError, step: int, params: PretrainingParams, device: torch.device) -> MemoryError:
    world = params.distributed.world_size
    per_process = f" ({params.batch_size // world} per process)" if world > 1 else ""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return MemoryError(
        f"out of memory at pretraining step {step} on {device} with pretraining.batch_size={params.batch_size}"
        f"{per_process}: lower pretraining.batch_size (or spread it over more processes with "
        f"pretraining.distributed.nproc_per_node). The allocator said: {detail}"
    )


def _checkpoint_folder(
    params: PretrainingParams, data_key: str | None, codebook: np.ndarray
) -> CheckpointFolder | None:
    if params.checkpoint.directory is None:
        return None
    key = run_key(data_key or "", params, codebook)
    return CheckpointFolder(Path(params.checkpoint.directory) / f"{params.method}-{key}")


def _resume(
    folder: CheckpointFolder,
    method: Method,
    optimizer: torch.optim.Optimizer,
    plan: StepPlan,
    generator: torch.Generator,
) -> _Progress:
    """Restore the newest checkpoint of this run into the objects given; a fresh start when there is none.

    Rank 0 reads it and sends it to the others, so only rank 0's disk needs to hold checkpoints.
    """
    found = folder.latest() if distributed.rank() == 0 else None
    if distributed.is_distributed():
        shared = [found]
        dist.broadcast_object_list(shared, src=0)
        found = shared[0]
    if found is None:
        return _Progress()
    state, path = found
    if distributed.rank() == 0:
        logger.info("Resuming from step %d (%s)", state["step"], path)
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    plan.total_steps = state["plan"]["total_steps"]
    plan.warmup_steps = state["plan"]["warmup_steps"]
    generator.set_state(state["batch_order_rng"])
    rng = state["rng"]
    if len(rng) == distributed.world_size():
        set_rng_state(rng[distributed.rank()])
    else:
        logger.warning(
            "The checkpoint was written by %d processes, this run has %d: random masks and noise will differ "
            "from the original run's",
            len(rng),
            distributed.world_size(),
        )
    return _Progress(
        step=state["step"],
        epoch=state["epoch"],
        step_in_epoch=state["step_in_epoch"],
        elapsed_s=state["elapsed_s"],
        records=state["records"],
        spreads=[tuple(s) for s in state["spreads"]],
        resumed_from=state["step"],
    )


def _all_ranks(value):
    """``[value of rank 0, value of rank 1, …]`` on every rank (a one-element list in one process)."""
    if not distributed.is_distributed():
        return [value]
    values = [None] * distributed.world_size()
    dist.all_gather_object(values, value)
    return values


def _parallel(method: Method, device: torch.device, params: PretrainingParams) -> torch.nn.Module:
    """What the loop calls: the method, wrapped in DDP across processes, compiled when asked."""
    model: torch.nn.Module = method
    if distributed.is_distributed():
        # Every method uses all its trainable parameters in the loss (checked for each method and
        # backbone), so DDP need not search the graph for unused ones.
        model = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None
        )
    if params.compile:
        model = torch.compile(model)
    return model


def encoder_from_checkpoint(checkpoint: dict) -> Encoder:
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"not a selfsup encoder checkpoint: format {checkpoint.get('format')!r}, expected {CHECKPOINT_FORMAT!r}"
        )
    encoder = build_encoder(checkpoint["config"])
    encoder.load_state_dict(checkpoint["state_dict"])
    return encoder.eval()
