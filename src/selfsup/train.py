"""The pretraining loop: ``pretrain`` trains a method on training views, in this process or in several.

``pretrain`` fits BEiT's tokenizer when none is given (``selfsup.tokenizer``),
names the run's checkpoint folder (``selfsup.checkpoint``), then trains here or
launches ``pretraining.distributed`` worker processes. ``pretraining.batch_size``
is the global batch: every rank trains on its equal share of each step's images,
and the losses see the whole batch (``selfsup.distributed``), so the run
computes what one process would on the same batch.

One process's run: build the method, its optimizer and step plan
(``selfsup.schedule``), resume from the newest checkpoint, then epoch after
epoch take the batches of the training views (``selfsup.data.training_views``)
and make one ``train_step`` each, with a history row per step, a collapse
reading every ``MONITOR_EVERY_STEPS`` steps, and a checkpoint every
``checkpoint.every_steps`` steps and at the end of every epoch. The same call
after a crash resumes bit for bit on CPU; a run that finishes removes its
checkpoints and returns the encoder checkpoint (``selfsup.encoder_checkpoint``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from selfsup import distributed
from selfsup.checkpoint import CheckpointFolder, checkpoint_folder, resume, save_state
from selfsup.collapse import MONITOR_EVERY_STEPS, collapse_verdict, measure_spread
from selfsup.config import PretrainingParams
from selfsup.data.training_views import Batch, TrainingViews, global_views
from selfsup.devices import autocast, resolve_device, uses_bf16
from selfsup.encoder_checkpoint import encoder_checkpoint, encoder_config
from selfsup.methods import Method, build_method
from selfsup.models import build_encoder
from selfsup.optimizer import make_optimizer
from selfsup.schedule import StepPlan
from selfsup.tokenizer import tokenizer_codebook
from selfsup.training_errors import check_fits, diverged, is_out_of_memory, out_of_memory

logger = logging.getLogger(__name__)


# (views, params, codebook) -> (the method to train, the config that rebuilds its encoder)
BuildModel = Callable[[TrainingViews, PretrainingParams, np.ndarray], tuple[Method, dict]]


def image_model(views: TrainingViews, params: PretrainingParams, codebook: np.ndarray) -> tuple[Method, dict]:
    """An image method on its backbone, for the views' shape and channel statistics."""
    config = encoder_config(views, params)
    return build_method(build_encoder(config), params, codebook), config


@dataclass
class TrainResult:
    checkpoint: dict  # {"format", "config", "state_dict", "training"}
    history: pd.DataFrame
    summary: dict


def pretrain(
    views: TrainingViews,
    params: PretrainingParams,
    codebook: np.ndarray | None = None,
    build_model: BuildModel = image_model,
) -> TrainResult:
    """Train ``params.method`` on ``views``: the view cache's (``CachedViews``) or views generated per batch
    (``OnTheFlyViews``); texts' token ids (``selfsup.text.token_views``) with ``build_model`` a text model.

    ``codebook`` is the output of ``tokenizer_codebook``; when None it is fitted here.
    With ``pretraining.distributed`` asking for more than one process, the workers
    are launched here and this returns once every rank has ended, with rank 0's
    result (the lowest rank of this machine on the others).
    """
    if codebook is None:
        codebook = tokenizer_codebook(views, params)
    folder = checkpoint_folder(params, views, codebook)
    if params.distributed.world_size > 1 and not distributed.is_distributed():
        return distributed.launch_training(_train_rank, (views, params, codebook, folder, build_model), params)
    return _Trainer(views, params, codebook, folder, build_model).run()


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def train_step(
    model: torch.nn.Module,
    method: Method,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    bf16: bool,
    params: PretrainingParams,
    step: int,
    epoch: int,
    folder: CheckpointFolder | None,
) -> tuple[float, dict]:
    """One optimizer step of ``model``, ``method`` itself or a wrapper of it (DDP, ``torch.compile``); the
    global batch's mean loss. A non-finite loss stops before the update."""
    device = global_views(batch).device
    try:
        with autocast(device, bf16):
            loss, logs = model(batch)
        loss_value = distributed.mean_over_ranks(loss.detach().float()).item()
        if not math.isfinite(loss_value):
            raise diverged(loss_value, step, epoch, params, folder)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        method.before_optimizer_step(epoch)
        optimizer.step()
    except RuntimeError as exc:
        if is_out_of_memory(exc):
            raise out_of_memory(exc, step, params, device) from None
        raise
    return loss_value, logs


class _Trainer:
    """One process's run: the method, its optimizer and step plan, and where the run stands."""

    def __init__(
        self,
        views: TrainingViews,
        params: PretrainingParams,
        codebook: np.ndarray,
        folder: CheckpointFolder | None,
        build_model: BuildModel = image_model,
    ):
        self.views, self.params, self.folder = views, params, folder
        seed_everything(params.seed)
        self.device = _training_device(params)
        method, self.config = build_model(views, params, codebook)
        check_fits(len(views), views.views_per_image, method.n_views, params)
        if distributed.is_distributed():
            # The same initial weights everywhere, then each rank its own masks and noise.
            torch.manual_seed(params.seed + 1_000_003 * distributed.rank())
            if params.distributed.sync_batchnorm:
                method = distributed.synchronise_batch_norm(method, self.device)
        self.memory_format = torch.channels_last if params.channels_last else torch.contiguous_format
        self.method = method.to(self.device, memory_format=self.memory_format)
        self.optimizer = make_optimizer(self.method, params)
        self.steps_per_epoch = len(views) // params.batch_size
        self.plan = StepPlan(self.steps_per_epoch, params)
        self.batch_order = torch.Generator().manual_seed(params.seed)
        self.progress = resume(folder, self.method, self.optimizer, self.plan, self.batch_order)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, self.plan.lr_factor, last_epoch=self.progress.step - 1
        )
        model = distributed.data_parallel(self.method, self.device)
        self.model = torch.compile(model) if params.compile else model

    def run(self) -> TrainResult:
        self._log_start()
        clock = _Clock(self.progress.elapsed_s)
        bf16 = uses_bf16(self.device, self.params)
        self.method.train()
        stopped_by = None
        with tqdm(
            total=self.plan.total_steps,
            initial=self.progress.step,
            desc=f"pretraining {self.params.method}",
            unit="step",
            disable=None if distributed.rank() == 0 else True,
        ) as bar:
            while stopped_by is None:
                stopped_by = self._epoch(clock, bf16, bar)
        return self._finish(stopped_by, clock.elapsed())

    def _epoch(self, clock: _Clock, bf16: bool, bar: tqdm) -> str | None:
        """The rest of the current epoch; why the run stops, or None when the epoch ran to its end."""
        progress, params = self.progress, self.params
        epoch_start_rng = self.batch_order.get_state()
        batches = self.views.epoch_batches(
            self.method.n_views,
            params.batch_size,
            self.batch_order,
            self.device,
            self.memory_format,
            progress.epoch,
            skip=progress.step_in_epoch,
            local_crops=self.method.local_crops,
        )
        for batch in batches:
            stopped_by = self._step(batch, clock, bf16)
            bar.total = self.plan.total_steps
            bar.update(1)
            bar.set_postfix(loss=f"{progress.records[-1]['loss']:.4f}", epoch=progress.epoch)
            if stopped_by:
                return stopped_by
            if progress.step % params.checkpoint.every_steps == 0 and progress.step_in_epoch < self.steps_per_epoch:
                self._save(clock, epoch_start_rng)
        progress.epoch += 1
        progress.step_in_epoch = 0
        self._save(clock, self.batch_order.get_state())
        return None

    def _step(self, batch: Batch, clock: _Clock, bf16: bool) -> str | None:
        """One training step and its history row; why to stop after it, or None to go on."""
        progress, params = self.progress, self.params
        step = progress.step
        loss, logs = train_step(
            self.model, self.method, self.optimizer, batch, bf16, params, step, progress.epoch, self.folder
        )
        lr = self.optimizer.param_groups[0]["lr"]
        self.schedule.step()
        self.method.on_step_end(step, self.plan.total_steps)
        step_s, elapsed = clock.tick()
        images_per_s = params.batch_size / step_s
        progress.records.append(
            {"step": step, "epoch": progress.epoch, "loss": loss, "lr": lr, "images_per_s": images_per_s, **logs}
        )
        progress.step += 1
        progress.step_in_epoch += 1
        if params.time_budget_s is not None:  # every rank must stop at the same step
            elapsed = distributed.from_rank_zero(elapsed, self.device)
        stopped_by = self.plan.after_step(progress.step, elapsed)
        if progress.step % MONITOR_EVERY_STEPS == 0 or stopped_by:
            progress.spreads.append((step, measure_spread(self.method.encoder, global_views(batch)[:, 0])))
            progress.records[-1]["embedding_std"] = progress.spreads[-1][1]
        return stopped_by

    def _save(self, clock: _Clock, batch_order_rng: torch.Tensor) -> None:
        if self.folder is None:
            return
        self.progress.elapsed_s = clock.elapsed()
        save_state(self.folder, self.progress, self.plan, self.method, self.optimizer, batch_order_rng)

    def _finish(self, stopped_by: str, wall_time: float) -> TrainResult:
        history = pd.DataFrame.from_records(self.progress.records)
        summary = self._summary(stopped_by, wall_time, float(history["loss"].iloc[-1]))
        logger.info(
            "Pretraining stopped by %s after %d steps, %.1f s (%.0f images/s)",
            stopped_by,
            self.progress.step,
            wall_time,
            summary["images_per_s"],
        )
        if self.folder is not None and distributed.rank() == 0:
            self.folder.remove()  # finished: a rerun trains again instead of resuming
        return TrainResult(encoder_checkpoint(self.method.encoder, self.config, summary), history, summary)

    def _summary(self, stopped_by: str, wall_time: float, final_loss: float) -> dict:
        params, step = self.params, self.progress.step
        return {
            "method": params.method,
            "backbone": params.backbone,
            "epochs": round(step / self.steps_per_epoch, 3),
            "steps": step,
            "batch_size": params.batch_size,
            "processes": distributed.world_size(),
            "seed": params.seed,
            "device": str(self.device),
            "views": self.views.kind,
            "wall_time_s": wall_time,
            "time_budget_s": params.time_budget_s,
            "images_per_s": step * params.batch_size / wall_time if wall_time > 0 else float("nan"),
            "stopped_by": stopped_by,
            "resumed_from_step": self.progress.resumed_from,
            "final_loss": final_loss,
            **collapse_verdict([tuple(s) for s in self.progress.spreads]),
        }

    def _log_start(self) -> None:
        params, world = self.params, distributed.world_size()
        logger.info(
            "Pretraining %s on %s%s: %d images, batch %d, at most %d epochs × %d steps%s",
            params.method,
            self.device,
            f" × {world} processes" if world > 1 else "",
            len(self.views),
            params.batch_size,
            params.epochs,
            self.steps_per_epoch,
            f", time budget {params.time_budget_s:.0f} s" if params.time_budget_s else "",
        )


class _Clock:
    """The run's elapsed seconds (a resumed run continues from its checkpoint's) and each step's duration."""

    def __init__(self, elapsed_s: float):
        self.started = time.perf_counter() - elapsed_s
        self.last_tick = time.perf_counter()

    def tick(self) -> tuple[float, float]:
        """At the end of a step: (seconds since the previous tick, the run's elapsed seconds)."""
        now = time.perf_counter()
        since, self.last_tick = now - self.last_tick, now
        return since, now - self.started

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _training_device(params: PretrainingParams) -> torch.device:
    """``pretraining.device``; in a process group on CUDA, this process's own GPU."""
    device = resolve_device(params.device)
    if device.type == "cuda" and distributed.is_distributed():
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _train_rank(
    views: TrainingViews,
    params: PretrainingParams,
    codebook: np.ndarray,
    folder: CheckpointFolder | None,
    build_model: BuildModel = image_model,
) -> TrainResult | None:
    """One worker of a distributed run (the views pickle their memory-mapped files by name); the lowest rank
    of each machine returns the result."""
    result = _Trainer(views, params, codebook, folder, build_model).run()
    return result if int(os.environ.get("LOCAL_RANK", "0")) == 0 else None
