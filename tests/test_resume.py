"""Checkpoints: a killed run resumes bit for bit; a NaN or an out-of-memory step stops with one clear error."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from selfsup.checkpoint import CheckpointFolder
from selfsup.config import PretrainingParams
from selfsup.data.cached_views import CachedViews
from selfsup.methods import METHODS, Method
from selfsup.methods.simclr import SimCLR
from selfsup.train import pretrain

TRAIN_SCRIPT = """
import logging, sys
import numpy as np, torch
from selfsup.config import PretrainingParams
from selfsup.data.cached_views import CachedViews
from selfsup.train import pretrain

logging.basicConfig(level=logging.INFO)
views = CachedViews(np.random.default_rng(0).integers(0, 256, (96, 3, 1, 8, 8), dtype=np.uint8))
params = PretrainingParams(
    epochs=40, batch_size=32, warmup_epochs=1, small_cnn={"widths": [8, 16]}, device="cpu",
    checkpoint={"directory": sys.argv[1], "every_steps": 2},
)
torch.save(pretrain(views, params).checkpoint["state_dict"], sys.argv[2])
"""


def tiny_views(n=96, k=3, seed=0) -> CachedViews:
    return CachedViews(np.random.default_rng(seed).integers(0, 256, (n, k, 1, 8, 8), dtype=np.uint8))


def tiny_params(checkpoints, **overrides) -> PretrainingParams:
    values = {
        "epochs": 3,
        "batch_size": 32,
        "warmup_epochs": 1,
        "small_cnn": {"widths": [8, 16]},
        "device": "cpu",
        "checkpoint": {"directory": str(checkpoints), "every_steps": 1},
    }
    return PretrainingParams(**{**values, **overrides})


def checkpoint_files(directory):
    return sorted(directory.glob("*/step-*.pt"))


def assert_same_encoder(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


def loss_that(monkeypatch, at_call: int, effect, method: type[Method] = SimCLR):
    """``method.loss``, with ``effect(loss)`` applied at call ``at_call`` (0-based): the step of that index."""
    original, calls = method.loss, []

    def loss(self, inputs):
        calls.append(None)
        value, logs = original(self, inputs)
        return (effect(value) if len(calls) - 1 == at_call else value), logs

    monkeypatch.setattr(method, "loss", loss)


def run_training(tmp_path, name: str) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT, str(tmp_path / f"{name}-checkpoints"), str(tmp_path / f"{name}.pt")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_sigkilled_run_resumes_and_ends_bitwise_identical(tmp_path):
    uninterrupted = run_training(tmp_path, "uninterrupted")
    killed = run_training(tmp_path, "killed")
    checkpoints = tmp_path / "killed-checkpoints"
    deadline = time.monotonic() + 120
    while not checkpoint_files(checkpoints) and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL, "the run ended before it could be killed: lengthen TRAIN_SCRIPT's run"
    newest = checkpoint_files(checkpoints)[-1]
    newest_step = int(newest.stem.split("-")[1])

    rerun = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(checkpoints), str(tmp_path / "killed.pt")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"Resuming from step {newest_step} ({newest})" in rerun.stderr
    assert uninterrupted.wait(timeout=300) == 0, (tmp_path / "uninterrupted.log").read_text()[-3000:]
    assert_same_encoder(torch.load(tmp_path / "uninterrupted.pt"), torch.load(tmp_path / "killed.pt"))
    assert not checkpoint_files(checkpoints), "a finished run removes its checkpoints"


# MoCo v2: its queue, key encoder and shuffling-BN generator are method state the checkpoint carries.
@pytest.mark.parametrize("method", ["simclr", "moco_v2"])
def test_interrupted_mid_epoch_resumes_to_the_same_encoder_and_history(tmp_path, monkeypatch, caplog, method):
    settings = {"method": method, "moco_v2": {"queue_size": 48}}
    reference = pretrain(tiny_views(), tiny_params(tmp_path / "reference", **settings))

    def interrupt(loss):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        # step 4: the second step of epoch 1 (3 steps per epoch)
        loss_that(patch, at_call=4, effect=interrupt, method=METHODS[method])
        with pytest.raises(KeyboardInterrupt):
            pretrain(tiny_views(), tiny_params(tmp_path, **settings))
    assert checkpoint_files(tmp_path)[-1].name == "step-000000004.pt"
    with caplog.at_level(logging.INFO, logger="selfsup.checkpoint"):
        resumed = pretrain(tiny_views(), tiny_params(tmp_path, **settings))
    assert "Resuming from step 4" in caplog.text
    assert resumed.summary["resumed_from_step"] == 4
    assert_same_encoder(reference.checkpoint["state_dict"], resumed.checkpoint["state_dict"])
    assert resumed.history["loss"].tolist() == reference.history["loss"].tolist()


def test_changed_parameters_never_resume_a_stale_checkpoint(tmp_path, monkeypatch, caplog):
    def interrupt(loss):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        loss_that(patch, at_call=2, effect=interrupt)
        with pytest.raises(KeyboardInterrupt):
            pretrain(tiny_views(), tiny_params(tmp_path))
    with caplog.at_level(logging.INFO, logger="selfsup.checkpoint"):
        result = pretrain(tiny_views(), tiny_params(tmp_path, learning_rate=5e-4))
    assert "Resuming" not in caplog.text and result.summary["resumed_from_step"] is None
    assert len(checkpoint_files(tmp_path)) == 2  # the other run's, untouched; this run removed its own


def test_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    loss_that(monkeypatch, at_call=4, effect=lambda loss: loss * float("nan"))
    with pytest.raises(FloatingPointError, match=r"became nan at step 4 .*Lower pretraining\.learning_rate"):
        pretrain(tiny_views(), tiny_params(tmp_path))
    newest = checkpoint_files(tmp_path)[-1]
    assert newest.name == "step-000000004.pt"  # the state after step 3: the NaN step never updated anything
    state, path = CheckpointFolder(newest.parent).latest()
    assert path == newest
    assert all(torch.isfinite(t).all() for t in state["method"].values() if t.is_floating_point())


def allocate_a_petabyte(loss):
    return loss + torch.empty(2**48, dtype=torch.float32).sum()


def cuda_out_of_memory(loss):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


@pytest.mark.parametrize("effect", [allocate_a_petabyte, cuda_out_of_memory], ids=["cpu_allocator", "cuda"])
def test_out_of_memory_names_the_batch_size(tmp_path, monkeypatch, effect):
    loss_that(monkeypatch, at_call=1, effect=effect)
    with pytest.raises(MemoryError, match=r"out of memory at pretraining step 1 .*pretraining\.batch_size=32"):
        pretrain(tiny_views(), tiny_params(tmp_path))


@pytest.mark.slow  # ~25 s: two workers import the package
def test_a_one_process_checkpoint_resumes_on_two_processes(tmp_path, monkeypatch, caplog):
    """Rank 0 reads the checkpoint and sends it to rank 1; the global batch makes the arithmetic the same."""
    reference = pretrain(tiny_views(), tiny_params(tmp_path / "reference"))

    def interrupt(loss):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        loss_that(patch, at_call=4, effect=interrupt)
        with pytest.raises(KeyboardInterrupt):
            pretrain(tiny_views(), tiny_params(tmp_path))
    resumed = pretrain(tiny_views(), tiny_params(tmp_path, distributed={"nproc_per_node": 2}))
    assert resumed.summary["resumed_from_step"] == 4 and resumed.summary["processes"] == 2
    for name, tensor in reference.checkpoint["state_dict"].items():
        torch.testing.assert_close(resumed.checkpoint["state_dict"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    np.testing.assert_allclose(resumed.history["loss"], reference.history["loss"], rtol=1e-5)
