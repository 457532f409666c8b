"""Training efficiency: end-to-end SimCLR images/s ÷ the same model's fwd+bwd on ready tensors.

End to end is `selfsup.train.pretrain` on a view cache (gathering views from
the memory-mapped cache on a prefetch thread, uint8 → float, loss, optimizer,
schedule, history). The ceiling is a bare loop over tensors already in memory
with the same model, loss and optimizer (fused AdamW, channels-last inputs, as
the trainer). Both at 28×28 gray, batch 256, the small CNN; the first steps of
each are excluded as warm-up. The two alternate three times and the best rate
of each counts: on a shared 2-core VM single runs swing by ±15 %.

    python benchmarks/training_efficiency.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit

from selfsup.config import PretrainingParams
from selfsup.data.cached_views import CachedViews
from selfsup.encoder_checkpoint import encoder_config
from selfsup.methods import build_method
from selfsup.models import build_encoder
from selfsup.train import pretrain

BATCH, STEPS, WARMUP, SIZE, VIEWS, REPEATS = 256, 30, 5, 28, 4, 3


def cached_views(n: int) -> np.ndarray:
    """A view cache on disk, memory-mapped as the trainer reads it."""
    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "views.npy"
    views = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, VIEWS, 1, SIZE, SIZE))
    views[:] = rng.integers(0, 256, views.shape, dtype=np.uint8)
    views.flush()
    return np.load(path, mmap_mode="r")


def model_only_images_per_s(views: np.ndarray, params: PretrainingParams) -> float:
    torch.manual_seed(params.seed)
    method = build_method(build_encoder(encoder_config(CachedViews(views), params)), params)
    method = method.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        [p for p in method.parameters() if p.requires_grad], lr=params.learning_rate, fused=True
    )
    batch = torch.from_numpy(np.array(views[:BATCH, :2])).float().div_(255.0)
    b, v = batch.shape[:2]
    flat = batch.flatten(0, 1).contiguous(memory_format=torch.channels_last)
    inputs = method.views(flat.view(b, v, *flat.shape[1:]))
    for step in range(STEPS):
        if step == WARMUP:
            started = time.perf_counter()
        loss, _ = method.loss(inputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return BATCH * (STEPS - WARMUP) / (time.perf_counter() - started)


def end_to_end_images_per_s(views: np.ndarray, params: PretrainingParams) -> float:
    steady = pretrain(CachedViews(views), params).history.iloc[WARMUP:]
    return BATCH * len(steady) / (BATCH / steady["images_per_s"]).sum()


def main() -> None:
    torch.manual_seed(0)
    views = cached_views(BATCH * STEPS)
    params = PretrainingParams(epochs=1, batch_size=BATCH, warmup_epochs=0, checkpoint={"directory": None})
    end_to_end_rate = model_only_rate = 0.0
    for _ in range(REPEATS):
        end_to_end_rate = max(end_to_end_rate, end_to_end_images_per_s(views, params))
        model_only_rate = max(model_only_rate, model_only_images_per_s(views, params))
    emit(
        {
            "benchmark": "training_efficiency",
            "batch": BATCH,
            "image": f"{SIZE}x{SIZE}x1",
            "backbone": params.backbone,
            "end_to_end_images_per_s": end_to_end_rate,
            "model_only_images_per_s": model_only_rate,
            "ratio": end_to_end_rate / model_only_rate,
            "target": 0.90,
        }
    )


if __name__ == "__main__":
    main()
