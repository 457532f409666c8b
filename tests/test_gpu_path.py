"""The accelerator options: torch.compile (exercised on CPU) and CUDA with bf16 autocast (only where a GPU is)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from selfsup.config import PretrainingParams
from selfsup.data.cached_views import CachedViews
from selfsup.train import pretrain


def tiny_views(n=96, k=3, seed=0) -> CachedViews:
    return CachedViews(np.random.default_rng(seed).integers(0, 256, (n, k, 1, 8, 8), dtype=np.uint8))


def tiny_params(**overrides) -> PretrainingParams:
    values = {"epochs": 1, "batch_size": 32, "warmup_epochs": 0, "small_cnn": {"widths": [8, 16]}}
    return PretrainingParams(**{**values, **overrides})


@pytest.mark.slow
def test_compiled_training_step_computes_the_same_losses_on_cpu():
    eager = pretrain(tiny_views(), tiny_params(device="cpu"))
    compiled = pretrain(tiny_views(), tiny_params(device="cpu", compile=True))
    np.testing.assert_allclose(compiled.history["loss"], eager.history["loss"], rtol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_training_tracks_float32_training():
    fp32 = pretrain(tiny_views(), tiny_params(device="cpu"))
    bf16 = pretrain(tiny_views(), tiny_params(device="cuda", mixed_precision=True))
    assert bf16.summary["device"].startswith("cuda")
    np.testing.assert_allclose(bf16.history["loss"].iloc[0], fp32.history["loss"].iloc[0], rtol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_fly_views_are_made_on_the_gpu_reproducibly_and_train():
    from selfsup.config import AugmentationParams
    from selfsup.data.on_the_fly import OnTheFlyViews

    images = np.random.default_rng(0).integers(0, 256, (96, 1, 8, 8), dtype=np.uint8)
    views = OnTheFlyViews(images, np.arange(96), AugmentationParams(mode="on_the_fly"))
    cuda = torch.device("cuda")

    def epoch():
        generator = torch.Generator().manual_seed(0)
        return [b.clone() for b in views.epoch_batches(2, 32, generator, cuda, torch.channels_last, 0)]

    first, again = epoch(), epoch()
    assert first[0].device.type == "cuda" and first[0].shape == (32, 2, 1, 8, 8)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    result = pretrain(views, tiny_params(device="cuda"))
    assert result.summary["views"] == "on_the_fly" and np.isfinite(result.history["loss"]).all()
