"""Shared bits of the benchmark scripts: machine description, timing and the JSON line."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable

import torch


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def best_time(run: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of ``repeats`` wall-clock timings of ``run()``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def synchronise(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock reading includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def emit(result: dict) -> None:
    """The benchmark's one JSON line, last on stdout."""
    print(json.dumps({**result, "machine": machine()}), flush=True)
