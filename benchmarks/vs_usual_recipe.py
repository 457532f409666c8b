"""End-to-end SimCLR on Fashion-MNIST: selfsup vs the usual recipe, images/s.

The usual recipe: torchvision transforms on PIL images (random resized crop
0.3–1, flip, brightness/contrast jitter p 0.8, blur p 0.2), a DataLoader with
2 workers, and the training loop (eager, float32, plain AdamW). selfsup, through
`selfsup.train.pretrain`, three rows:

- ``selfsup_default``: the view cache (built once, batched; its build time is
  reported apart) with the default parameters (float32, fused AdamW);
- ``selfsup`` (the headline ``ratio``): the view cache with the options
  recommended for this machine, listed under ``selfsup_options``:
  ``mixed_precision_cpu`` (bf16 autocast) when the CPU has bf16 units (AMX or AVX-512 BF16);
- ``selfsup_on_the_fly``: the same options, views generated per batch
  (``augmentation.mode: on_the_fly``) instead of read from the cache.

Same model (small CNN at 28×28), batch 256, NT-Xent, AdamW. Reads the IDX files
from /usr/share/datasets/fashion-mnist, or uses random images of the same shape
when they are absent (said in the output).

    python benchmarks/vs_usual_recipe.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from augmentation import TwoViews

from selfsup.config import AugmentationParams, PretrainingParams
from selfsup.data.idx import read_idx_pair
from selfsup.data.on_the_fly import OnTheFlyViews
from selfsup.data.view_cache import ensure_cache
from selfsup.devices import cpu_has_bf16_units
from selfsup.encoder_checkpoint import encoder_config
from selfsup.methods import build_method
from selfsup.models import build_encoder
from selfsup.train import pretrain

FASHION = Path("/usr/share/datasets/fashion-mnist")
BATCH, STEPS, WARMUP = 256, 40, 5
AUGMENT = AugmentationParams(
    views_per_image=4,
    crop_scale=(0.3, 1.0),
    max_translate=0.0,
    hflip_p=0.5,
    brightness=0.4,
    contrast=0.4,
    blur_p=0.2,
    noise_std=0.0,
)


def fashion_images(n: int) -> tuple[np.ndarray, str]:
    images_file = FASHION / "train-images-idx3-ubyte.gz"
    if images_file.exists():
        images, _ = read_idx_pair(images_file, FASHION / "train-labels-idx1-ubyte.gz")
        return images[:n], "fashion-mnist"
    return np.random.default_rng(0).integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), "random 28x28"


def usual_recipe_images_per_s(images: np.ndarray, params: PretrainingParams, config: dict) -> float:
    transform = T.Compose(
        [
            T.RandomResizedCrop(28, scale=(0.3, 1.0)),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4)], p=0.8),
            T.RandomApply([T.GaussianBlur(5, sigma=(0.1, 1.0))], p=0.2),
            T.ToTensor(),
        ]
    )
    loader = DataLoader(TwoViews(images, transform), batch_size=BATCH, shuffle=True, num_workers=2, drop_last=True)
    torch.manual_seed(params.seed)
    method = build_method(build_encoder(config), params).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=params.learning_rate)
    for step, (first, second) in enumerate(loader):
        if step == WARMUP:
            started = time.perf_counter()
        loss, _ = method.loss((first, second))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return BATCH * (len(loader) - WARMUP) / (time.perf_counter() - started)


def selfsup_images_per_s(views, params: PretrainingParams) -> float:
    """Steady-state images/s of ``pretrain``: its per-step timings after the warm-up steps."""
    history = pretrain(views, params).history.iloc[WARMUP:]
    return BATCH * len(history) / (BATCH / history["images_per_s"]).sum()


def main() -> None:
    images, source = fashion_images(BATCH * STEPS)
    started = time.perf_counter()
    cache = ensure_cache(tempfile.mkdtemp(), images, np.arange(len(images)), AUGMENT)
    cache_build_s = time.perf_counter() - started
    params = PretrainingParams(epochs=1, batch_size=BATCH, warmup_epochs=0)
    options = {"mixed_precision_cpu": cpu_has_bf16_units()}
    recommended = params.model_copy(update=options)
    cached = cache.bind(images)
    default_rate = selfsup_images_per_s(cached, params)
    selfsup_rate = selfsup_images_per_s(cached, recommended)
    on_the_fly = OnTheFlyViews(images, np.arange(len(images)), AUGMENT.model_copy(update={"mode": "on_the_fly"}))
    on_the_fly_rate = selfsup_images_per_s(on_the_fly, recommended)
    usual_rate = usual_recipe_images_per_s(images, params, encoder_config(cached, params))
    emit(
        {
            "benchmark": "vs_usual_recipe",
            "data": source,
            "batch": BATCH,
            "steps": STEPS,
            "warmup_steps": WARMUP,
            "backbone": params.backbone,
            "selfsup_options": options,
            "selfsup_images_per_s": selfsup_rate,
            "selfsup_default_images_per_s": default_rate,
            "selfsup_on_the_fly_images_per_s": on_the_fly_rate,
            "usual_recipe_images_per_s": usual_rate,
            "view_cache_build_s_per_1000_images": 1000 * cache_build_s / len(images),
            "ratio": selfsup_rate / usual_rate,
            "ratio_default": default_rate / usual_rate,
            "ratio_on_the_fly": on_the_fly_rate / usual_rate,
            "target": 1.6,
        }
    )


if __name__ == "__main__":
    main()
