"""Every method trained by the trainer on two gloo processes, against one process on the same global batches.

README, "Scaling out": a run on N processes computes what one process computes.
Both runs go through ``pretrain`` (batch shares, DDP, global batch norm, the
momentum encoders, queues and centres of ``on_step_end``), 4 steps each, float32.
The fast check of the same arithmetic (one step, every gradient, float64) is
``test_distributed.py``'s; this one is slow: two workers train all 14 methods.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from selfsup import distributed
from selfsup.config import PretrainingParams
from selfsup.data.cached_views import CachedViews
from selfsup.encoder_checkpoint import encoder_config
from selfsup.methods import METHODS
from selfsup.models import build_encoder
from selfsup.train import pretrain
from tests.test_distributed import SAME_AS_ONE_PROCESS, SMALL

# Each process draws its own MAE and BEiT masks, denoising noise and jigsaw permutation labels from its own
# seed (the trainer reseeds every rank differently after building the method), so two processes draw other
# values than one process does for the same images: equality is not expected, only training.
DRAWN_PER_RANK = ("mae", "beit", "denoising_ae", "jigsaw")


def test_the_lists_cover_every_method():
    assert sorted(SAME_AS_ONE_PROCESS + DRAWN_PER_RANK) == sorted(METHODS)


def _views() -> CachedViews:
    return CachedViews(np.random.default_rng(0).integers(0, 256, (64, 2, 1, 8, 8), dtype=np.uint8))


def _params(name: str, processes: int) -> PretrainingParams:
    """4 steps of 16 images, SGD at a learning rate of 1e-3.

    Float32 rounding must stay below 1e-5. Not AdamW: its first steps divide each gradient by its
    own magnitude, so rounding in a near-zero gradient becomes a step of ±learning_rate (one process
    alone, with channels_last on and off, ends BYOL's 4 steps 5e-4 apart in loss under AdamW, 1e-6
    under SGD). Not a higher rate: Barlow Twins' steps are large (its loss is ~30). Still the encoders'
    weights move by 1e-4 to 1e-2, far beyond the tolerance.
    """
    return PretrainingParams(
        method=name,
        backbone="vit_tiny" if name in ("mae", "beit") else "small_cnn",
        epochs=1,
        batch_size=16,
        warmup_epochs=0,
        optimizer="sgd",
        learning_rate=0.001,
        device="cpu",
        distributed={"nproc_per_node": processes},
        **SMALL,
    )


def _train(names: tuple[str, ...]) -> dict:
    """In every worker: each method's history (loss and the method's logs per step) and final encoder weights.

    Not the throughput, nor the collapse monitor's reading: rank 0 measures it on its own share.
    """
    results = {"world_size": distributed.world_size()}
    for name in names:
        result = pretrain(_views(), _params(name, distributed.world_size()))
        history = result.history.drop(columns=["images_per_s", "embedding_std"])
        results[name] = (history, result.checkpoint["state_dict"])
    return results


@pytest.fixture(scope="module")
def two_processes() -> dict:
    return distributed.launch(_train, (SAME_AS_ONE_PROCESS + DRAWN_PER_RANK,), nproc_per_node=2)


@pytest.mark.slow  # ~60 s for the module: two workers train every method, then one process does
@pytest.mark.parametrize("name", SAME_AS_ONE_PROCESS)
def test_two_processes_train_as_one_process(two_processes, name):
    assert two_processes["world_size"] == 2
    history, weights = two_processes[name]
    one = _train((name,))[name]
    pd.testing.assert_frame_equal(history, one[0], rtol=1e-5, atol=1e-5)
    assert weights.keys() == one[1].keys()
    for key, tensor in one[1].items():
        torch.testing.assert_close(weights[key], tensor, rtol=1e-5, atol=1e-5, msg=f"{name} {key}")


@pytest.mark.slow
@pytest.mark.parametrize("name", DRAWN_PER_RANK)
def test_methods_that_draw_per_process_train_on_two_processes(two_processes, name):
    history, weights = two_processes[name]
    one = _train((name,))[name]
    assert len(history) == len(one[0]) == 4 and np.isfinite(history["loss"]).all()
    torch.manual_seed(0)  # the trainer's seed, before its first draw: the encoder as it was built
    initial = build_encoder(encoder_config(_views(), _params(name, 2))).state_dict()
    assert all(torch.isfinite(tensor).all() for tensor in weights.values() if tensor.is_floating_point())
    assert any(not torch.equal(weights[key], tensor) for key, tensor in initial.items()), "the encoder trained"
