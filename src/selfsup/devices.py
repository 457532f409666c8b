"""Where a model runs and in what precision: the device named by a parameter, and bf16 autocast."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext

import torch

from selfsup.config import PretrainingParams

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def cpu_has_bf16_units() -> bool:
    """AMX tiles (Intel Sapphire Rapids and later) or AVX-512 BF16 (AMD Zen 4 and later): the CPUs
    where bf16 convolutions beat float32 (a SimCLR step 1.7-2x faster on both kinds measured)."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)


def uses_bf16(device: torch.device, params: PretrainingParams) -> bool:
    """Whether training on ``device`` runs under bf16 autocast: asked for, and (on a CPU) worth it."""
    if device.type == "cuda":
        return params.mixed_precision
    if device.type == "cpu" and params.mixed_precision_cpu:
        if cpu_has_bf16_units():
            return True
        logger.warning(
            "pretraining.mixed_precision_cpu: this CPU has no bf16 units (AMX or AVX-512 BF16); training in float32"
        )
    return False


def autocast(device: torch.device, bf16: bool) -> AbstractContextManager:
    """bf16 autocast on ``device`` when ``bf16``, else full precision."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
