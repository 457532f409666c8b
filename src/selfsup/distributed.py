"""Several processes, one training run: launching, batch shares, gathering, DDP, synchronised batch norm.

``launch`` starts ``nproc_per_node`` workers on this machine through PyTorch's
elastic launcher (the engine behind ``torchrun``); each joins the process group
(gloo on CPU, NCCL on CUDA) and runs the given function (``launch_training``:
with the layout of ``pretraining.distributed``). Each rank trains on its
``batch_share`` of every global batch. Outside a process group every helper
here is the identity, so the same code trains in one process.

Losses see the *global* batch through ``gather``: an all-gather whose backward
sends every rank its share of the gradient, so a loss computed over the gathered
rows and averaged by DDP has the gradients of one process on the whole batch.
Batch norm does too (``synchronise_batch_norm``), except under a module marked
by ``keep_batch_norm_local`` (MoCo v2's shuffled key encoder).
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn
from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from selfsup.config import PretrainingParams
from selfsup.devices import resolve_device

# torch 2.14 deprecates torch.distributed.nn.functional for the private _functional_collectives,
# whose names are themselves being renamed; the public functions still work, so keep them quiet.
warnings.filterwarnings("ignore", r"torch\.distributed\.nn\.functional\.\w+ is deprecated", FutureWarning)

logger = logging.getLogger(__name__)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def batch_share(batch_size: int) -> tuple[int, int]:
    """(first row, rows) of this rank's equal share of a global batch."""
    share = batch_size // world_size()
    return rank() * share, share


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's rows concatenated in rank order; gradients flow back to the rank that owns each row."""
    if not is_distributed():
        return tensor
    if not tensor.requires_grad:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)
    return torch.cat(dist_fn.all_gather(tensor.contiguous()))


def local_rows(n_local: int, device: torch.device) -> torch.Tensor:
    """Indices of this rank's ``n_local`` rows within a ``gather``-ed tensor."""
    return torch.arange(n_local, device=device) + rank() * n_local


def from_rank_zero(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank: decisions such as the time budget's stop must agree."""
    if not is_distributed():
        return value
    shared = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(shared, src=0)
    return float(shared.item())


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a detached tensor over the ranks (for logging and for the NaN check)."""
    if not is_distributed():
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose statistics cover the global batch, on any backend (gloo included).

    ``torch.nn.SyncBatchNorm`` runs on CUDA only; this one uses differentiable
    all-reduces of the per-channel sums, so its output and gradients equal those of
    ``BatchNorm`` on the concatenated batch. Outside a process group it is ``BatchNorm``.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = input.numel() // input.shape[1] * dist.get_world_size()  # the trainer's shards are equal
        mean = dist_fn.all_reduce(input.sum(dims)) / count
        centred = input - mean.view(shape)
        var = dist_fn.all_reduce(centred.pow(2).sum(dims)) / count
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                unbiased = var.detach() * count / max(1, count - 1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` wrapped in DDP inside a process group; itself outside one."""
    if not is_distributed():
        return module
    # Every method uses all its trainable parameters in the loss (checked for each method and
    # backbone), so DDP need not search the graph for unused ones.
    return nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def keep_batch_norm_local(module: nn.Module) -> nn.Module:
    """Mark ``module`` so that ``synchronise_batch_norm`` leaves its BatchNorms per process.

    For statistics that must *not* span the global batch: MoCo v2's shuffled key encoder.
    """
    module.batch_norm_stays_local = True
    return module


def synchronise_batch_norm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm in ``module`` computing global-batch statistics (SyncBatchNorm on CUDA, else
    ``GlobalBatchNorm``), except those under a module marked by ``keep_batch_norm_local``."""
    if getattr(module, "batch_norm_stays_local", False):
        return module
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return _global_batch_norm(module)
    for name, child in module.named_children():
        module.add_module(name, synchronise_batch_norm(child, device))
    return module


def _global_batch_norm(module: nn.modules.batchnorm._BatchNorm) -> GlobalBatchNorm:
    if isinstance(module, GlobalBatchNorm):
        return module
    converted = GlobalBatchNorm(
        module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
    )
    # The same parameter and buffer objects, as SyncBatchNorm's conversion keeps them: a momentum
    # copy's frozen parameters stay frozen (fresh ones would want gradients DDP never sees).
    for name, parameter in module.named_parameters(recurse=False):
        setattr(converted, name, parameter)
    for name, buffer in module.named_buffers(recurse=False):
        setattr(converted, name, buffer)
    converted.train(module.training)
    return converted


# ---------------------------------------------------------------- launching


class RankFailedError(RuntimeError):
    """A worker process of a distributed run failed; the message is that rank's own error."""


def launch(
    function: Callable[..., Any],
    args: tuple,
    *,
    nproc_per_node: int,
    nnodes: int = 1,
    node_rank: int = 0,
    rdzv_endpoint: str | None = None,
    backend: str = "gloo",
) -> Any:
    """Run ``function(*args)`` on ``nproc_per_node`` ranks here (× ``nnodes`` machines); the lowest local rank's return.

    One machine: a private rendezvous on a free local port. Several: the static
    rendezvous at ``rdzv_endpoint`` (host:port of the machine with ``node_rank`` 0),
    as ``torchrun --nnodes N --node-rank R --master-addr H --master-port P`` does.
    Returns after every rank has ended; a failing rank raises ``RankFailedError``
    with that rank's message.
    """
    if nnodes == 1:
        rendezvous = {"rdzv_backend": "c10d", "rdzv_endpoint": "localhost:0", "rdzv_configs": {}}
    else:
        if not rdzv_endpoint:
            raise ValueError(
                f"pretraining.distributed.nnodes={nnodes} needs pretraining.distributed.rdzv_endpoint "
                "(host:port of the machine with node_rank 0)"
            )
        rendezvous = {"rdzv_backend": "static", "rdzv_endpoint": rdzv_endpoint, "rdzv_configs": {"rank": node_rank}}
    with tempfile.TemporaryDirectory(prefix="selfsup-ranks-") as log_dir:
        config = LaunchConfig(
            min_nodes=nnodes,
            max_nodes=nnodes,
            nproc_per_node=nproc_per_node,
            run_id=f"selfsup-{uuid.uuid4().hex[:12]}" if nnodes == 1 else "selfsup",
            max_restarts=0,
            monitor_interval=0.1,
            start_method="spawn",
            logs_specs=DefaultLogsSpecs(log_dir=log_dir),
            **rendezvous,
        )
        try:
            returns = elastic_launch(config, _rank_main)(function, args, backend)
        except ChildFailedError as exc:
            raise RankFailedError(_root_cause(exc)) from None
    return returns[min(returns)]


def launch_training(function: Callable[..., Any], args: tuple, params: PretrainingParams) -> Any:
    """``launch`` on the processes ``pretraining.distributed`` lays out: one per GPU on CUDA, gloo on CPU."""
    layout = params.distributed
    device = resolve_device(params.device)
    if device.type == "cuda" and layout.nproc_per_node > torch.cuda.device_count():
        raise ValueError(
            f"pretraining.distributed.nproc_per_node={layout.nproc_per_node} exceeds the "
            f"{torch.cuda.device_count()} CUDA devices here: one process per GPU"
        )
    backend = backend_for(device)
    logger.info(
        "Launching %d processes × %d node(s) (%s); batch %d = %d per process",
        layout.nproc_per_node,
        layout.nnodes,
        backend,
        params.batch_size,
        params.batch_size // layout.world_size,
    )
    return launch(
        function,
        args,
        nproc_per_node=layout.nproc_per_node,
        nnodes=layout.nnodes,
        node_rank=layout.node_rank,
        rdzv_endpoint=layout.rdzv_endpoint,
        backend=backend,
    )


def _root_cause(exc: ChildFailedError) -> str:
    """The first failing rank's own exception message; a signal only when no rank reported one."""
    reported = {rank: failure for rank, failure in exc.failures.items() if failure.error_file_data.get("message")}
    candidates = reported or exc.failures
    failed_rank, failure = min(candidates.items(), key=lambda item: item[1].timestamp)
    message = failure.message
    if isinstance(message, dict):
        message = message.get("message", str(message))
    return f"rank {failed_rank} failed: {message}"


def _rank_main(function: Callable[..., Any], args: tuple, backend: str) -> Any:
    """What each worker runs: join the process group, run ``function``, leave the group."""
    local_rank = int(os.environ["LOCAL_RANK"])
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    elif "OMP_NUM_THREADS" not in os.environ:  # share the cores instead of each rank taking them all
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["LOCAL_WORLD_SIZE"])))
    _log_from_rank(int(os.environ["RANK"]))
    dist.init_process_group(backend)
    result = function(*args)  # on an error the process ends here; the launcher stops the other ranks
    dist.destroy_process_group()
    return result


def _log_from_rank(global_rank: int) -> None:
    """Spawned workers start without logging handlers: selfsup's INFO from rank 0, warnings from all."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"[rank {global_rank}] %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("selfsup").setLevel(logging.INFO if global_rank == 0 else logging.WARNING)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"
