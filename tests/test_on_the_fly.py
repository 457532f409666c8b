"""On-the-fly views: batches generated from the image store per step, reproducible by seed."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch

from selfsup.config import AugmentationParams, PretrainingParams, validate
from selfsup.data.cache_key import cache_key
from selfsup.data.on_the_fly import OnTheFlyPlan, OnTheFlyViews, batch_seed
from selfsup.data.view_cache import META_FILE, VIEWS_FILE, ViewCache, ViewCacheRequest
from selfsup.datasets import ViewCacheDataset
from selfsup.errors import ParameterError
from selfsup.methods.simclr import SimCLR
from selfsup.preflight import validate_run
from selfsup.train import pretrain

CPU = torch.device("cpu")


def store(n=120, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 1, size, size), dtype=np.uint8)


def source(n_train=96, **augmentation) -> OnTheFlyViews:
    # The store holds test images too: only ``positions`` train.
    return OnTheFlyViews(store(), np.arange(10, 10 + n_train), AugmentationParams(**augmentation))


def epoch(views, seed=0, epoch_index=0, batch_size=32, skip=0, n_views=2):
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(views), generator=torch.Generator().manual_seed(seed))
    batches = list(views.epoch_batches(n_views, batch_size, generator, CPU, torch.channels_last, epoch_index, skip))
    return batches, order


def tiny_params(**overrides) -> PretrainingParams:
    values = {"epochs": 2, "batch_size": 32, "warmup_epochs": 0, "small_cnn": {"widths": [8, 16]}, "device": "cpu"}
    return PretrainingParams(**{**values, **overrides})


def test_batches_have_the_method_shape_dtype_and_range():
    batches, _ = epoch(source(output_size=(6, 6)), n_views=3)
    assert len(batches) == 96 // 32
    for batch in batches:
        assert batch.shape == (32, 3, 1, 6, 6) and batch.dtype == torch.float32 and batch.device == CPU
        assert 0.0 <= batch.min() and batch.max() <= 1.0


def test_views_are_channels_last_for_rgb():
    views = OnTheFlyViews(np.zeros((40, 3, 8, 8), np.uint8) + 128, np.arange(40), AugmentationParams())
    batch = next(iter(views.epoch_batches(2, 8, torch.Generator(), CPU, torch.channels_last, 0)))
    assert batch.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)


def test_a_seed_gives_the_same_views_and_another_seed_others():
    first, _ = epoch(source(seed=3))
    again, _ = epoch(source(seed=3))
    other, _ = epoch(source(seed=4))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_views_of_an_image_differ_across_views_steps_and_epochs():
    views = source(n_train=32, noise_std=0.0)  # one batch per epoch: every image in every epoch
    batches = {}
    for index in (0, 1):
        (batch,), order = epoch(views, epoch_index=index, batch_size=32)
        batches[index] = batch[torch.argsort(order)]  # rows back in image order
    first, second = batches[0], batches[1]
    assert not torch.equal(first[:, 0], first[:, 1])  # the two views of one image
    assert not torch.equal(first, second)  # the same images, another epoch
    assert (first - second).abs().flatten(1).amax(dim=1).gt(0).float().mean() > 0.9
    assert batch_seed(0, 0, 0) != batch_seed(0, 0, 1) != batch_seed(0, 1, 0) != batch_seed(0, 0, 0, rank=1)


def test_a_resumed_epoch_regenerates_the_same_remaining_batches():
    full, _ = epoch(source(), epoch_index=2)
    resumed, _ = epoch(source(), epoch_index=2, skip=1)
    assert len(resumed) == len(full) - 1
    assert all(torch.equal(a, b) for a, b in zip(full[1:], resumed))


def test_only_the_training_positions_are_read():
    images = np.zeros((60, 1, 8, 8), np.uint8)
    images[:30] = 255  # never to be trained on
    views = OnTheFlyViews(images, np.arange(30, 60), AugmentationParams(noise_std=0.0, brightness=0.0, contrast=0.0))
    batches, _ = epoch(views, batch_size=10)
    assert all(batch.max() == 0 for batch in batches)


def test_pretrain_on_the_fly_is_reproducible_and_reduces_the_loss():
    views = source()
    first = pretrain(views, tiny_params(epochs=6))
    second = pretrain(views, tiny_params(epochs=6))
    for name, tensor in first.checkpoint["state_dict"].items():
        assert torch.equal(tensor, second.checkpoint["state_dict"][name]), name
    losses = first.history["loss"].to_numpy()
    assert first.summary["views"] == "on_the_fly" and first.summary["steps"] == 6 * 3
    assert np.isfinite(losses).all() and losses[-3:].mean() < losses[:3].mean()
    assert first.checkpoint["config"]["image_size"] == [8, 8]


def test_pretrain_on_the_fly_trains_at_the_output_size():
    result = pretrain(source(output_size=(6, 6)), tiny_params(epochs=1))
    assert result.checkpoint["config"]["image_size"] == [6, 6]


def test_on_the_fly_run_resumes_to_the_same_encoder(tmp_path, monkeypatch, caplog):
    def params(directory):
        return tiny_params(epochs=3, checkpoint={"directory": str(directory), "every_steps": 1})

    reference = pretrain(source(), params(tmp_path / "reference"))
    original, calls = SimCLR.loss, []

    def interrupted(self, inputs):
        calls.append(None)
        if len(calls) == 5:  # step 4: the second step of epoch 1
            raise KeyboardInterrupt
        return original(self, inputs)

    with monkeypatch.context() as patch:
        patch.setattr(SimCLR, "loss", interrupted)
        with pytest.raises(KeyboardInterrupt):
            pretrain(source(), params(tmp_path / "run"))
    with caplog.at_level(logging.INFO, logger="selfsup.checkpoint"):
        resumed = pretrain(source(), params(tmp_path / "run"))
    assert "Resuming from step 4" in caplog.text
    for name, tensor in reference.checkpoint["state_dict"].items():
        assert torch.equal(tensor, resumed.checkpoint["state_dict"][name]), name
    assert resumed.history["loss"].tolist() == reference.history["loss"].tolist()


def test_mode_is_validated_with_the_allowed_values():
    assert validate(AugmentationParams, "augmentation", {"mode": "on_the_fly"}).mode == "on_the_fly"
    assert validate(AugmentationParams, "augmentation", {}).mode == "cache"
    with pytest.raises(ParameterError, match=r"augmentation\.mode='fast'.*'cache' or 'on_the_fly'"):
        validate(AugmentationParams, "augmentation", {"mode": "fast"})
    with pytest.raises(ParameterError, match=r"augmentation\.mode="):
        validate_run({"augmentation": {"mode": "onthefly"}}, used={"augmentation"})


def test_the_mode_does_not_change_the_cache_key(tmp_path):
    images, positions = store(), np.arange(96)
    assert cache_key(images, positions, AugmentationParams()) == cache_key(
        images, positions, AugmentationParams(mode="on_the_fly")
    )


def test_dataset_holds_a_plan_in_on_the_fly_mode_and_keeps_the_cache(tmp_path):
    images, positions = store(), np.arange(10, 106)
    dataset = ViewCacheDataset(path=str(tmp_path / "views"))
    dataset.save(ViewCacheRequest(images, positions, AugmentationParams(views_per_image=2)))
    cache = dataset.load()
    assert isinstance(cache, ViewCache) and cache.views.shape == (96, 2, 1, 8, 8)
    built_at = (tmp_path / "views" / VIEWS_FILE).stat().st_mtime_ns

    dataset.save(ViewCacheRequest(images, positions, AugmentationParams(views_per_image=2, mode="on_the_fly", seed=5)))
    plan = dataset.load()
    assert isinstance(plan, OnTheFlyPlan) and plan.params.seed == 5
    np.testing.assert_array_equal(plan.positions, positions)
    views = plan.bind(images)
    assert len(views) == 96 and views.data_key == plan.key != cache.key
    assert (tmp_path / "views" / VIEWS_FILE).exists() and (tmp_path / "views" / META_FILE).exists()

    dataset.save(ViewCacheRequest(images, positions, AugmentationParams(views_per_image=2)))
    again = dataset.load()
    assert isinstance(again, ViewCache) and again.key == cache.key
    assert (tmp_path / "views" / VIEWS_FILE).stat().st_mtime_ns == built_at  # reused, not rebuilt


def test_worker_processes_reopen_the_memory_mapped_store(tmp_path):
    np.save(tmp_path / "images.npy", store())
    images = np.load(tmp_path / "images.npy", mmap_mode="r")
    views = OnTheFlyViews(images, np.arange(10, 106), AugmentationParams(seed=7))
    shared = pickle.dumps(views)
    assert len(shared) < images.nbytes  # the file's name, not its bytes
    reopened = pickle.loads(shared)
    assert isinstance(reopened, OnTheFlyViews) and isinstance(reopened.images, np.memmap)
    assert reopened.images.filename == images.filename and reopened.data_key == views.data_key
    np.testing.assert_array_equal(reopened.gather(np.arange(5)).numpy(), images[10:15])
