"""GPU throughput of the pretraining loop, bf16: ResNet-18 SimCLR at 32×32 (batch 512),
ResNet-50 at 224×224 (batch 256).

For each case: end-to-end images/s of ``selfsup.train.pretrain`` on a
memory-mapped view cache (prefetch thread, pinned non-blocking copies, uint8 →
float on the GPU, bf16 autocast, channels-last), the model-only images/s of the
same method, optimizer and precision on a batch already on the GPU, their
ratio, and the peak GPU memory of each. The first WARMUP steps are excluded.

    python benchmarks/gpu_scaling.py              # on a CUDA machine
    python benchmarks/gpu_scaling.py --compile    # the same with torch.compile
    python benchmarks/gpu_scaling.py --smoke      # tiny sizes on CPU: checks that the script runs
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, synchronise

from selfsup.config import PretrainingParams
from selfsup.data.cached_views import CachedViews
from selfsup.encoder_checkpoint import encoder_config
from selfsup.methods import build_method
from selfsup.models import build_encoder
from selfsup.optimizer import make_optimizer
from selfsup.train import pretrain

CASES = [("resnet18", 32, 512, True), ("resnet50", 224, 256, False)]  # backbone, size, batch, small-image stem
SMOKE_CASES = [("resnet18", 16, 8, True)]
STEPS, WARMUP = 40, 10


def cached_views(n: int, size: int, directory: Path) -> np.ndarray:
    """A random 2-view RGB cache on disk, memory-mapped as the trainer reads it."""
    path = directory / f"views-{size}.npy"
    views = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 2, 3, size, size))
    rng = np.random.default_rng(0)
    for start in range(0, n, 256):
        views[start : start + 256] = rng.integers(0, 256, views[start : start + 256].shape, dtype=np.uint8)
    views.flush()
    del views
    return np.load(path, mmap_mode="r")


def peak_memory_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def model_only(views: np.ndarray, params: PretrainingParams, device: torch.device, steps: int, warmup: int) -> float:
    torch.manual_seed(params.seed)
    method = build_method(build_encoder(encoder_config(CachedViews(views[:64]), params)), params)
    method = method.to(device, memory_format=torch.channels_last)
    model = torch.compile(method) if params.compile else method
    optimizer = make_optimizer(method, params)
    batch = torch.from_numpy(np.array(views[: params.batch_size])).to(device).float().div_(255.0)
    use_bf16 = device.type == "cuda" and params.mixed_precision
    for step in range(steps):
        if step == warmup:
            synchronise(device)
            started = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
            loss, _ = model(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronise(device)
    return params.batch_size * (steps - warmup) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = torch.device("cpu" if args.smoke else "cuda")
    cases, steps, warmup = (SMOKE_CASES, 4, 1) if args.smoke else (CASES, STEPS, WARMUP)
    with tempfile.TemporaryDirectory() as directory:
        for backbone, size, batch, small_stem in cases:
            views = cached_views(batch * steps, size, Path(directory))
            params = PretrainingParams(
                method="simclr",
                backbone=backbone,
                epochs=1,
                batch_size=batch,
                warmup_epochs=0,
                device=device.type,
                compile=args.compile,
                **{backbone: {"small_image_stem": small_stem}},
            )
            reset_peak(device)
            history = pretrain(CachedViews(views), params).history.iloc[warmup:]
            end_to_end = batch * len(history) / (batch / history["images_per_s"]).sum()
            end_to_end_peak = peak_memory_gib(device)
            reset_peak(device)
            ceiling = model_only(views, params, device, steps, warmup)
            emit(
                {
                    "benchmark": "gpu_scaling",
                    "method": "simclr",
                    "backbone": backbone,
                    "image": f"{size}x{size}x3",
                    "batch": batch,
                    "precision": "bf16" if device.type == "cuda" else "fp32",
                    "compile": args.compile,
                    "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                    "end_to_end_images_per_s": end_to_end,
                    "model_only_images_per_s": ceiling,
                    "ratio": end_to_end / ceiling,
                    "peak_memory_gib_end_to_end": end_to_end_peak,
                    "peak_memory_gib_model_only": peak_memory_gib(device),
                }
            )


if __name__ == "__main__":
    main()
