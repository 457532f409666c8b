"""Multi-crop (local views beside the global ones) in both view modes, and the first-epoch freezes of
DINO's last layer and SwAV's prototypes, through the real trainer."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from selfsup import devices, distributed, train
from selfsup.config import AugmentationParams, PretrainingParams
from selfsup.data.on_the_fly import OnTheFlyViews
from selfsup.data.training_views import LocalCrops, MultiCropBatch
from selfsup.data.view_cache import ensure_cache
from selfsup.losses import dino_cross_entropy, multi_crop_swapped_prediction, sinkhorn
from selfsup.methods import swav as swav_module
from selfsup.models import float32_linear
from selfsup.optimizer import make_optimizer
from selfsup.train import pretrain, train_step
from tests.conftest import PROJECT_ROOT
from tests.test_methods_contrastive import tiny_method

CPU = torch.device("cpu")
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
CROPS = LocalCrops(count=3, size=(4, 4), scale=(0.1, 0.4))
FROZEN = {"dino": "head.last_layer.weight", "swav": "prototypes.weight"}
FREEZE_PARAMETER = {"dino": "freeze_last_layer_epochs", "swav": "freeze_prototypes_epochs"}
SMALL = {
    "dino": {"hidden_dim": 16, "bottleneck_dim": 8, "out_dim": 32},
    "swav": {"hidden_dim": 16, "projection_dim": 8, "n_prototypes": 10},
}


def store(n=100, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 1, size, size), dtype=np.uint8)


def flat_images(n=100):
    """Image i is flat at grey level 2i: a crop of it, of any size, shows that level (and black where
    its box leaves the image)."""
    return np.broadcast_to((2 * np.arange(n, dtype=np.uint8))[:, None, None, None], (n, 1, 8, 8)).copy()


# Only crops: no translation (its zero padding), no photometric change
CROPS_ONLY = {"max_translate": 0.0, "brightness": 0.0, "contrast": 0.0, "noise_std": 0.0, "blur_p": 0.0}


def sources(images, tmp_path, **augmentation):
    """The same training images as cached views (bound to the store) and as on-the-fly views."""
    positions = np.arange(len(images) - 4)  # the last images are a "test split" no view may come from
    cache = ensure_cache(tmp_path, images, positions, AugmentationParams(views_per_image=3, **augmentation))
    on_the_fly = OnTheFlyViews(images, positions, AugmentationParams(mode="on_the_fly", **augmentation))
    return {"cache": cache.bind(images), "on_the_fly": on_the_fly}


def epoch(views, epoch_index=0, skip=0, local_crops=CROPS):
    generator = torch.Generator().manual_seed(0)
    return list(
        views.epoch_batches(2, 16, generator, CPU, torch.channels_last, epoch_index, skip, local_crops=local_crops)
    )


def tiny_params(method, **overrides) -> PretrainingParams:
    values = {"epochs": 2, "batch_size": 16, "warmup_epochs": 0, "small_cnn": {"widths": [8, 16]}, "device": "cpu"}
    return PretrainingParams(method=method, **{**values, **overrides})


# --- the data path -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["cache", "on_the_fly"])
def test_batches_hold_global_and_local_views_of_the_same_images(mode, tmp_path):
    images = flat_images()
    batches = epoch(sources(images, tmp_path, **CROPS_ONLY)[mode])
    assert len(batches) == 96 // 16
    for batch in batches:
        assert isinstance(batch, MultiCropBatch)
        assert batch.global_views.shape == (16, 2, 1, 8, 8) and batch.local_views.shape == (16, 3, 1, 4, 4)
        assert batch.local_views.dtype == torch.float32
        # a crop of a flat image is flat but where its box leaves the image (zero weight there), so
        # each view's brightest pixel is its image's level: every view of row b shows row b's image
        peaks = torch.cat([batch.global_views.flatten(2).amax(2), batch.local_views.flatten(2).amax(2)], dim=1)
        level = peaks[:, :1]
        torch.testing.assert_close(peaks, level.expand_as(peaks), atol=1 / 255, rtol=0)
        assert (level * 255).round().max() < 2 * 96  # training images only


@pytest.mark.parametrize("mode", ["cache", "on_the_fly"])
def test_local_views_are_reproducible_fresh_per_epoch_and_resume_exactly(mode, tmp_path):
    views = sources(store(), tmp_path)[mode]
    first, again = epoch(views), epoch(views)
    for a, b in zip(first, again):
        assert torch.equal(a.global_views, b.global_views) and torch.equal(a.local_views, b.local_views)
    assert not torch.equal(first[0].local_views, epoch(views, epoch_index=1)[0].local_views)
    assert not torch.equal(first[0].local_views[:, 0], first[0].local_views[:, 1])
    resumed = epoch(views, skip=2)
    for a, b in zip(first[2:], resumed):
        assert torch.equal(a.global_views, b.global_views) and torch.equal(a.local_views, b.local_views)


@pytest.mark.parametrize("mode", ["cache", "on_the_fly"])
def test_without_local_crops_the_batches_are_the_plain_tensors(mode, tmp_path):
    views = sources(store(), tmp_path)[mode]
    plain, multi = epoch(views, local_crops=None), epoch(views)
    assert all(isinstance(batch, torch.Tensor) for batch in plain)
    assert all(torch.equal(a, b.global_views) for a, b in zip(plain, multi))  # local crops leave globals as they were


def test_local_crops_cover_their_scale_of_the_image():
    """On images white on the left half, crops of 1-2 % of the area mostly fall on one half;
    crops of 90-100 % see both halves."""
    images = np.zeros((8, 1, 32, 32), np.uint8)
    images[..., :16] = 255
    source = OnTheFlyViews(images, np.arange(8), AugmentationParams(**CROPS_ONLY)).source

    def white_fractions(scale):
        crops = LocalCrops(count=64, size=(8, 8), scale=scale)
        views = source.local_views(source.gather(np.arange(8)), crops, torch.Generator().manual_seed(0))
        return views.flatten(2).mean(dim=2)

    def one_sided(fractions):
        return ((fractions < 0.05) | (fractions > 0.95)).float().mean()

    assert one_sided(white_fractions((0.01, 0.02))) > 0.7
    assert one_sided(white_fractions((0.9, 1.0))) == 0


def test_cached_views_reach_worker_processes_with_the_images_local_crops_are_cut_from(tmp_path):
    images = np.lib.format.open_memmap(tmp_path / "images.npy", mode="w+", dtype=np.uint8, shape=(100, 1, 8, 8))
    images[:] = store()
    views = sources(images, tmp_path / "cache")["cache"]
    reopened = pickle.loads(pickle.dumps(views))
    assert reopened.source.images.filename == images.filename
    for a, b in zip(epoch(views), epoch(reopened)):
        assert torch.equal(a.local_views, b.local_views)


# --- the methods ---------------------------------------------------------------------------


def multi_crop_batch(seed=0, locals_=3):
    generator = torch.Generator().manual_seed(seed)
    return MultiCropBatch(
        torch.rand(8, 2, 1, 8, 8, generator=generator), torch.rand(8, locals_, 1, 4, 4, generator=generator)
    )


def test_dino_teacher_sees_the_global_views_and_the_student_every_view():
    method = tiny_method("dino", local_crops=3, local_crop_size=[4, 4])
    assert method.local_crops == LocalCrops(3, (4, 4), (0.05, 0.4))
    batch = multi_crop_batch()
    loss, _ = method(batch)
    views = [*batch.global_views.unbind(1), *batch.local_views.unbind(1)]
    with torch.no_grad():
        teacher = method.teacher_head(method.teacher_encoder(torch.cat(views[:2]))).chunk(2)
    features = torch.cat([method.encoder(torch.cat(views[:2])), method.encoder(torch.cat(views[2:]))])
    student = method.head(features).split(8)
    reference = dino_cross_entropy(student, teacher, method.center, 0.1, method.teacher_temperature)
    torch.testing.assert_close(loss, reference)
    assert len(student) == 5
    expected_center_update = torch.cat(teacher).mean(dim=0, keepdim=True)
    method.on_step_end(0, 10)
    torch.testing.assert_close(method.center, 0.1 * expected_center_update)


def test_swav_codes_only_the_global_views_and_predicts_them_from_every_view():
    method = tiny_method("swav", local_crops=2, local_crop_size=[4, 4])
    batch = multi_crop_batch(locals_=2)
    loss, _ = method(batch)
    views = [*batch.global_views.unbind(1), *batch.local_views.unbind(1)]
    features = torch.cat([method.encoder(torch.cat(views[:2])), method.encoder(torch.cat(views[2:]))])
    z = torch.nn.functional.normalize(method.projector(features), dim=1)
    scores = float32_linear(z, method.prototypes.weight).split(8)
    codes = [sinkhorn(s, 0.05, 3) for s in scores[:2]]
    torch.testing.assert_close(loss, multi_crop_swapped_prediction(scores, codes, 0.1))


@pytest.mark.parametrize("method", ["dino", "swav"])
def test_a_plain_batch_still_trains_a_multi_crop_method_on_its_global_views(method):
    """Tests and tools that hand a method a plain (B, 2, C, H, W) batch get the two-view loss."""
    plain = tiny_method(method)
    assert plain.local_crops is None
    batch = torch.rand(8, 2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    loss, _ = plain(batch)
    assert torch.isfinite(loss)


def test_under_bf16_autocast_the_sharp_logits_of_every_view_stay_float32(monkeypatch):
    """DINO's last layer and SwAV's prototype scores run in float32 for the local views too."""
    dtypes = []
    dino = tiny_method("dino", local_crops=3, local_crop_size=[4, 4])
    dino.head.last_layer.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    swav = tiny_method("swav", local_crops=3, local_crop_size=[4, 4])
    float32_scores = swav_module.float32_linear

    def recorded(x, weight):
        dtypes.append(float32_scores(x, weight).dtype)
        return float32_scores(x, weight)

    monkeypatch.setattr(swav_module, "float32_linear", recorded)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for method in (dino, swav):
            loss, _ = method(multi_crop_batch())
            assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert dtypes == [torch.float32, torch.float32]


# --- through the trainer ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["cache", "on_the_fly"])
@pytest.mark.parametrize("method", ["dino", "swav"])
def test_multi_crop_trains_in_both_view_modes_under_bf16_with_float32_state(method, mode, tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_bf16_units", lambda: True)
    views = sources(store(), tmp_path)[mode]
    section = {**SMALL[method], "local_crops": 2, "local_crop_size": [4, 4]}
    result = pretrain(views, tiny_params(method, epochs=1, mixed_precision_cpu=True, **{method: section}))
    assert np.isfinite(result.history["loss"]).all()
    assert all(t.dtype == torch.float32 for t in result.checkpoint["state_dict"].values() if t.is_floating_point())


@pytest.fixture
def states_by_step(monkeypatch):
    """``(epoch, step) → state`` of the whole method after each training step, ``(0, -1)`` before the first."""
    states: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    train_step = train.train_step

    def snapshot(method, key):
        states[key] = {k: v.detach().clone() for k, v in method.state_dict().items() if isinstance(v, torch.Tensor)}

    def recorded(model, method, optimizer, batch, bf16, params, step, epoch, folder):
        if not states:
            snapshot(method, (0, -1))
        result = train_step(model, method, optimizer, batch, bf16, params, step, epoch, folder)
        snapshot(method, (epoch, step))
        return result

    monkeypatch.setattr(train, "train_step", recorded)
    return states


@pytest.mark.parametrize("method", ["dino", "swav"])
def test_the_frozen_part_does_not_move_in_the_first_epoch_and_moves_after(method, states_by_step):
    params = tiny_params(method, epochs=2, weight_decay=0.1, **{method: SMALL[method]})
    pretrain(OnTheFlyViews(store(), np.arange(96), AugmentationParams()), params)
    start, frozen = states_by_step[0, -1], FROZEN[method]
    first_epoch = [state for (epoch, step), state in states_by_step.items() if epoch == 0 and step >= 0]
    last_of_first, last = first_epoch[-1], states_by_step[max(states_by_step)]
    assert len(first_epoch) == 96 // 16
    assert all(torch.equal(state[frozen], start[frozen]) for state in first_epoch), "moved in epoch 0"
    assert not torch.equal(last[frozen], last_of_first[frozen]), "still frozen after epoch 0"
    encoder = next(k for k in start if k.startswith("encoder.backbone.") and k.endswith(".weight"))
    assert not torch.equal(last_of_first[encoder], start[encoder]), "the rest trains in epoch 0"


@pytest.mark.parametrize("method", ["dino", "swav"])
def test_without_a_freeze_the_part_moves_from_the_first_step(method, states_by_step):
    section = {**SMALL[method], FREEZE_PARAMETER[method]: 0}
    pretrain(
        OnTheFlyViews(store(), np.arange(96), AugmentationParams()), tiny_params(method, epochs=1, **{method: section})
    )
    assert not torch.equal(states_by_step[0, 0][FROZEN[method]], states_by_step[0, -1][FROZEN[method]])


# --- on two processes ------------------------------------------------------------------------


def _freeze_on_each_rank(names: tuple[str, ...]) -> dict:
    """Runs in every worker: the real train_step through DDP on this rank's multi-crop share, epochs 0 and 1."""
    results = {}
    for name in names:
        method = distributed.synchronise_batch_norm(tiny_method(name, local_crops=2, local_crop_size=[4, 4]), CPU)
        model = distributed.data_parallel(method, CPU)
        params = tiny_params(name, weight_decay=0.1, distributed={"nproc_per_node": 2})
        optimizer = make_optimizer(method, params)
        frozen = dict(method.named_parameters())[FROZEN[name]]
        readings = [frozen.detach().clone()]
        for epoch in (0, 1):
            batch = multi_crop_batch(seed=10 * epoch + distributed.rank())
            train_step(model, method, optimizer, batch, False, params, epoch, epoch, None)
            method.on_step_end(epoch, 2)
            readings.append(frozen.detach().clone())
        every_rank = distributed.gather(torch.stack(readings)[None])
        results[name] = {
            "same_on_every_rank": all(torch.equal(every_rank[0], other) for other in every_rank[1:]),
            "moved_in_epoch_0": not torch.equal(readings[1], readings[0]),
            "moved_in_epoch_1": not torch.equal(readings[2], readings[1]),
        }
    return results


@pytest.mark.slow  # ~35 s on 2 busy cores: two workers import the package
def test_two_processes_keep_the_frozen_part_fixed_alike_in_the_first_epoch():
    ranks = distributed.launch(_freeze_on_each_rank, (("dino", "swav"),), nproc_per_node=2)
    for name in ("dino", "swav"):
        assert ranks[name] == {"same_on_every_rank": True, "moved_in_epoch_0": False, "moved_in_epoch_1": True}, name


@pytest.mark.slow  # ~40 s each on 2 busy cores: two workers import the package and train
@pytest.mark.parametrize("mode", ["cache", "on_the_fly"])
def test_multi_crop_trains_on_two_processes(mode, tmp_path):
    views = sources(store(), tmp_path)[mode]
    section = {**SMALL["dino"], "local_crops": 2, "local_crop_size": [4, 4]}
    result = pretrain(views, tiny_params("dino", epochs=2, distributed={"nproc_per_node": 2}, dino=section))
    assert result.summary["processes"] == 2 and result.summary["steps"] == 2 * 96 // 16
    assert np.isfinite(result.history["loss"]).all()


# --- the benchmark ---------------------------------------------------------------------------


@pytest.mark.slow  # ~4 min on 2 cores: six rows, each through the evaluation protocol
def test_the_benchmark_smoke_run_reports_every_row_and_leaves_results_alone(tmp_path):
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"needs Fashion-MNIST under {FASHION_MNIST}: apt-get install -y dataset-fashion-mnist")
    results = PROJECT_ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_text()
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH")]))
    script = PROJECT_ROOT / "benchmarks" / "multicrop_fashion_mnist.py"
    finished = subprocess.run(
        [sys.executable, str(script), "--smoke", "--cache", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": path, "KEDRO_DISABLE_TELEMETRY": "1"},
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    line = json.loads(finished.stdout.strip().splitlines()[-1])
    assert line["benchmark"] == "multicrop_fashion_mnist" and line["smoke"] is True
    crops = {row["row"]: row["local_crops"] for row in line["rows"]}
    assert crops == {
        "raw_pixels": 0,
        "random_init_small_cnn": 0,
        "dino": 0,
        "dino_multicrop": 8,
        "swav": 0,
        "swav_multicrop": 6,
    }
    assert all(row["steps"] >= 1 for row in line["rows"] if row["row"] in ("dino_multicrop", "swav_multicrop"))
    assert results.read_text() == before
