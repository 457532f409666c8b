"""Two gloo processes on CPU compute what one process computes on the whole batch; failures surface whole."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydantic
import pytest
import torch
import torch.distributed as dist

from selfsup import distributed
from selfsup.config import PretrainingParams
from selfsup.data.cached_views import CachedViews
from selfsup.encoder_checkpoint import encoder_config
from selfsup.methods import METHODS, build_method
from selfsup.models import build_encoder
from selfsup.tokenizer import tokenizer_codebook

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# No random draw per process: two processes compute what one process computes. MAE, BEiT, the
# denoising autoencoder and jigsaw draw masks, noise or labels per process (test_distributed_methods.py).
SAME_AS_ONE_PROCESS = (
    "simclr",
    "moco_v2",
    "moco_v3",
    "byol",
    "simsiam",
    "barlow_twins",
    "vicreg",
    "dino",
    "swav",
    "rotnet",
)
ENCODER = {
    "backbone": "small_cnn",
    "in_channels": 1,
    "image_size": [8, 8],
    "backbone_params": {"widths": [8, 16], "output_grid": 1},
    "mean": [0.5],
    "std": [0.25],
}
SMALL = {
    "small_cnn": {"widths": [8, 16]},
    "vit_tiny": {"patch_size": 4, "depth": 1},
    "simclr": {"hidden_dim": 32, "projection_dim": 16},
    # Two shuffling-BN groups: one per process on two processes, and one process normalises the same two
    # groups of the same shuffle (methods/moco_v2.py), so the two runs agree.
    "moco_v2": {"hidden_dim": 32, "projection_dim": 16, "queue_size": 48, "shuffle_bn_groups": 2},
    "moco_v3": {"hidden_dim": 32, "projection_dim": 16},
    "byol": {"hidden_dim": 32, "projection_dim": 16},
    "simsiam": {"projection_dim": 16, "predictor_hidden_dim": 8},
    "barlow_twins": {"hidden_dim": 32, "projection_dim": 16},
    "vicreg": {"hidden_dim": 32, "projection_dim": 32},
    "dino": {"hidden_dim": 32, "bottleneck_dim": 16, "out_dim": 64},
    "swav": {"hidden_dim": 32, "projection_dim": 16, "n_prototypes": 10},
    "mae": {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2},
    "beit": {"codebook_size": 8, "tokenizer_patches": 200},
    "denoising_ae": {"hidden_dim": 32},
    "rotnet": {"hidden_dim": 32},
    "jigsaw": {"grid": 2, "num_permutations": 4, "hidden_dim": 32},
}


def _params(method: str) -> PretrainingParams:
    return PretrainingParams(method=method, batch_size=16, device="cpu", distributed={"nproc_per_node": 2}, **SMALL)


def _method(name: str):
    torch.manual_seed(0)
    return build_method(build_encoder(ENCODER), _params(name)).double()  # float64: equal up to rounding noise


def _batch() -> torch.Tensor:
    return torch.rand(16, 2, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _loss_and_gradients(method, model, batch) -> tuple[float, dict[str, torch.Tensor]]:
    loss, _ = model(batch)
    loss.backward()
    gradients = {name: p.grad.clone() for name, p in method.named_parameters() if p.grad is not None}
    return distributed.mean_over_ranks(loss.detach()).item(), gradients


def _one_step_on_each_rank(names: tuple[str, ...]) -> dict:
    """Runs in every worker: the trainer's DDP wrapping, global batch norm, this rank's half of the batch."""
    results = {"world_size": distributed.world_size()}
    share = _batch().chunk(distributed.world_size())[distributed.rank()]
    for name in names:
        method = distributed.synchronise_batch_norm(_method(name), torch.device("cpu"))
        results[name] = _loss_and_gradients(method, distributed.data_parallel(method, torch.device("cpu")), share)
    return results


def test_two_processes_match_one_process_on_the_concatenated_batch():
    """One step of every method without a per-process draw: loss and every gradient, in float64."""
    ranks = distributed.launch(_one_step_on_each_rank, (SAME_AS_ONE_PROCESS,), nproc_per_node=2)
    assert ranks["world_size"] == 2
    for name in SAME_AS_ONE_PROCESS:
        method = _method(name)
        loss, gradients = _loss_and_gradients(method, method, _batch())
        ddp_loss, ddp_gradients = ranks[name]
        assert ddp_loss == pytest.approx(loss, abs=1e-5), name
        assert ddp_gradients.keys() == gradients.keys()
        for parameter, gradient in gradients.items():
            torch.testing.assert_close(
                ddp_gradients[parameter], gradient, rtol=1e-5, atol=1e-5, msg=f"{name} {parameter}"
            )


def _fails_on_rank_one() -> str:
    if distributed.rank() == 1:
        raise ValueError("rank one cannot read its shard")
    dist.barrier()  # rank 0 waits in a collective, as in a training step, until the launcher stops it
    return "finished"


def test_a_failing_rank_fails_the_launch_with_its_own_message():
    with pytest.raises(distributed.RankFailedError, match="rank 1 failed: ValueError: rank one cannot read its shard"):
        distributed.launch(_fails_on_rank_one, (), nproc_per_node=2)


def _rank_world_and_rank_sum() -> tuple[int, int, float]:
    total = torch.tensor([float(dist.get_rank())])
    dist.all_reduce(total)
    return dist.get_rank(), dist.get_world_size(), total.item()


NODE_SCRIPT = (
    "import sys; from selfsup import distributed; from tests.test_distributed import _rank_world_and_rank_sum; "
    "print(distributed.launch(_rank_world_and_rank_sum, (), nproc_per_node=1, nnodes=2, "
    "node_rank=int(sys.argv[1]), rdzv_endpoint=sys.argv[2]))"
)


@pytest.mark.slow  # ~30 s: two launchers and two workers import the package
def test_two_nodes_meet_at_the_static_rendezvous():
    """Two "machines" (two launchers here) with node_rank 0 and 1 and node 0's endpoint form one group."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"127.0.0.1:{probe.getsockname()[1]}"
    nodes = [
        subprocess.Popen(
            [sys.executable, "-c", NODE_SCRIPT, str(rank), endpoint],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=300)[0].strip().splitlines()[-1] for node in nodes]
    assert outputs == ["(0, 2, 1.0)", "(1, 2, 1.0)"]


def test_outside_a_process_group_gather_is_the_identity():
    x = torch.randn(4, 3, requires_grad=True)
    assert distributed.gather(x) is x
    assert distributed.world_size() == 1 and distributed.rank() == 0


def test_global_batch_must_split_evenly_over_the_processes():
    with pytest.raises(pydantic.ValidationError, match="batch_size=33 is the global batch"):
        PretrainingParams(batch_size=33, distributed={"nproc_per_node": 2})
    with pytest.raises(pydantic.ValidationError, match="rdzv_endpoint"):
        PretrainingParams(distributed={"nnodes": 2, "node_rank": 1})


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_trainable_parameter_gets_a_gradient(name):
    """DDP runs without searching for unused parameters: every method must use all of its trainable ones."""
    views = np.random.default_rng(0).integers(0, 256, (64, 2, 1, 16, 16), dtype=np.uint8)
    params = PretrainingParams(
        method=name,
        backbone="vit_tiny" if name in ("mae", "beit") else "small_cnn",
        batch_size=8,
        small_cnn={"widths": [8, 16]},
        vit_tiny={"patch_size": 4, "depth": 1},
        beit={"codebook_size": 8, "tokenizer_patches": 500},
        jigsaw={"grid": 2, "num_permutations": 4},
    )
    torch.manual_seed(0)
    cached = CachedViews(views)
    method = build_method(build_encoder(encoder_config(cached, params)), params, tokenizer_codebook(cached, params))
    loss, _ = method(torch.from_numpy(views[:8]).float() / 255)
    loss.backward()
    assert [n for n, p in method.named_parameters() if p.requires_grad and p.grad is None] == []


@pytest.mark.parametrize("name", ["byol", "moco_v2", "moco_v3", "dino"])
def test_global_batch_norm_keeps_the_momentum_copies_frozen(name):
    """The CPU conversion reuses each BatchNorm's parameters: a frozen momentum copy stays frozen
    (fresh trainable ones never got a gradient, and DDP stopped on the second step)."""
    method = _method(name)
    before = {key: (id(p), p.requires_grad) for key, p in method.named_parameters()}
    converted = distributed.synchronise_batch_norm(method, torch.device("cpu"))
    assert any(isinstance(module, distributed.GlobalBatchNorm) for module in converted.modules())
    assert {key: (id(p), p.requires_grad) for key, p in converted.named_parameters()} == before
    assert not all(trainable for _, trainable in before.values())  # some are frozen


def test_moco_v2_key_encoder_keeps_its_batch_norm_per_process():
    """Shuffling BN normalises each process's groups alone; global statistics would undo the shuffle."""
    method = distributed.synchronise_batch_norm(_method("moco_v2"), torch.device("cpu"))
    assert any(isinstance(module, distributed.GlobalBatchNorm) for module in method.encoder.modules())
    keys = [*method.key_encoder.modules(), *method.key_projector.modules()]
    assert any(isinstance(module, torch.nn.modules.batchnorm._BatchNorm) for module in keys)
    assert not any(isinstance(module, distributed.GlobalBatchNorm) for module in keys)
