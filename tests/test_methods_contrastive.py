"""The stateful parts of the contrastive and distillation methods do what they promise."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from selfsup.config import ParameterError, PretrainingParams, validate
from selfsup.data.cached_views import CachedViews
from selfsup.losses import sinkhorn
from selfsup.methods import METHODS, build_method
from selfsup.methods.dino import UnitRowLinear, warmup_temperature
from selfsup.methods.moco_v2 import NegativeQueue
from selfsup.methods.momentum import cosine_momentum
from selfsup.models import build_encoder
from selfsup.train import pretrain

ZOO = ["moco_v2", "moco_v3", "byol", "simsiam", "barlow_twins", "vicreg", "dino", "swav"]
# method → (online modules, their momentum copies)
MOMENTUM_PAIRS = {
    "moco_v2": [("encoder", "key_encoder"), ("projector", "key_projector")],
    "moco_v3": [("encoder", "momentum_encoder"), ("projector", "momentum_projector")],
    "byol": [("encoder", "target_encoder"), ("projector", "target_projector")],
    "dino": [("encoder", "teacher_encoder"), ("head", "teacher_head")],
}
ENCODER_CONFIG = {
    "backbone": "small_cnn",
    "in_channels": 1,
    "image_size": [8, 8],
    "backbone_params": {"widths": [4, 8]},
    "mean": [0.5],
    "std": [0.25],
}
SMALL_HEADS = {
    "moco_v2": {"queue_size": 64, "hidden_dim": 16, "projection_dim": 8},
    "moco_v3": {"hidden_dim": 16, "projection_dim": 8},
    "byol": {"hidden_dim": 16, "projection_dim": 8},
    "simsiam": {"projection_dim": 16, "predictor_hidden_dim": 4},
    "barlow_twins": {"hidden_dim": 16, "projection_dim": 16},
    "vicreg": {"hidden_dim": 16, "projection_dim": 16},
    "dino": {"hidden_dim": 16, "bottleneck_dim": 8, "out_dim": 32},
    "swav": {"hidden_dim": 16, "projection_dim": 8, "n_prototypes": 10},
}


def tiny_method(name: str, **overrides):
    torch.manual_seed(0)
    params = PretrainingParams(method=name, **{name: {**SMALL_HEADS.get(name, {}), **overrides}})
    return build_method(build_encoder(ENCODER_CONFIG), params)


def train_one_step(method, batch_size: int = 8, seed: int = 0):
    """loss → backward → a plain SGD step, as the trainer does before ``on_step_end``."""
    batch = torch.rand(batch_size, 2, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    loss, _ = method.loss(method.views(batch))
    loss.backward()
    with torch.no_grad():
        for parameter in method.parameters():
            if parameter.grad is not None:
                parameter -= 0.5 * parameter.grad
    return batch


# --- momentum encoders ----------------------------------------------------------


@pytest.mark.parametrize("name", MOMENTUM_PAIRS)
def test_momentum_copies_get_no_gradients(name):
    method = tiny_method(name)
    loss, _ = method.loss(method.views(torch.rand(8, 2, 1, 8, 8)))
    loss.backward()
    for online, target in MOMENTUM_PAIRS[name]:
        assert all(p.grad is not None for p in getattr(method, online).parameters() if p.requires_grad)
        for parameter in getattr(method, target).parameters():
            assert not parameter.requires_grad and parameter.grad is None


@pytest.mark.parametrize("name", MOMENTUM_PAIRS)
@pytest.mark.parametrize("step, total_steps", [(0, 10), (4, 10), (9, 10)])
def test_momentum_copy_is_an_ema_of_the_online_weights(name, step, total_steps):
    method = tiny_method(name)
    for _ in range(2):  # let online and target drift apart first
        train_one_step(method)
        method.on_step_end(0, 1000)
    before = {target: copy.deepcopy(getattr(method, target)) for _, target in MOMENTUM_PAIRS[name]}
    train_one_step(method, seed=1)
    method.on_step_end(step, total_steps)
    params = getattr(PretrainingParams(), name)
    momentum = params.momentum if name == "moco_v2" else cosine_momentum(params.momentum, step, total_steps)
    for online, target in MOMENTUM_PAIRS[name]:
        pairs = zip(
            getattr(method, online).parameters(), before[target].parameters(), getattr(method, target).parameters()
        )
        for online_p, old_target_p, new_target_p in pairs:
            torch.testing.assert_close(new_target_p, momentum * old_target_p + (1 - momentum) * online_p)


def test_cosine_momentum_rises_from_base_to_one():
    values = [cosine_momentum(0.99, step, 100) for step in range(101)]
    assert values[0] == pytest.approx(0.99) and values[50] == pytest.approx(0.995) and values[-1] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(values, values[1:]))


# --- the MoCo queue -------------------------------------------------------------


def test_queue_overwrites_the_oldest_keys_first_and_wraps():
    queue = NegativeQueue(size=5, dim=1)
    queue.enqueue(torch.tensor([[1.0], [2.0], [3.0]]))
    assert queue.keys[:3, 0].tolist() == [1, 2, 3] and int(queue.pointer) == 3
    queue.enqueue(torch.tensor([[4.0], [5.0], [6.0]]))  # 6 wraps to row 0, replacing 1, the oldest
    assert queue.keys[:, 0].tolist() == [6, 2, 3, 4, 5] and int(queue.pointer) == 1
    oldest_first = queue.keys.roll(-int(queue.pointer), dims=0)[:, 0].tolist()
    assert oldest_first == [2, 3, 4, 5, 6]


def test_queue_given_more_keys_than_rows_keeps_the_newest_in_order():
    queue = NegativeQueue(size=3, dim=1)
    queue.enqueue(torch.arange(1.0, 8.0)[:, None])
    oldest_first = queue.keys.roll(-int(queue.pointer), dims=0)[:, 0].tolist()
    assert oldest_first == [5, 6, 7]


def test_moco_v2_enqueues_the_step_keys_after_the_step():
    method = tiny_method("moco_v2", queue_size=20)
    batch = torch.rand(8, 2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    shuffles = method.shuffle_generator.get_state()
    keys = torch.cat([method.keys(view) for view in method.views(batch)])
    method.shuffle_generator.set_state(shuffles)  # the loss draws the same shuffles
    queue_before = method.queue.keys.clone()
    loss, _ = method.loss(method.views(batch))
    assert torch.equal(method.queue.keys, queue_before)  # the loss used the queue as it was
    loss.backward()
    method.on_step_end(0, 10)
    torch.testing.assert_close(method.queue.keys[:16], keys)
    torch.testing.assert_close(method.queue.keys[16:], queue_before[16:])
    assert int(method.queue.pointer) == 16


# --- MoCo v2's shuffling BN ----------------------------------------------------


def key_net(method, images):
    with torch.no_grad():
        return method.key_projector(method.key_encoder(images))


def test_shuffled_keys_equal_each_group_encoded_alone_then_put_back_in_order():
    method = tiny_method("moco_v2", shuffle_bn_groups=4)
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    shuffles = method.shuffle_generator.get_state()
    keys = method.keys(images)
    order = torch.randperm(16, generator=torch.Generator().set_state(shuffles))
    expected = torch.empty_like(keys)
    for group in order.tensor_split(4):
        expected[group] = key_net(method, images[group])
    torch.testing.assert_close(keys, expected)
    # Four groups of four, not one batch of sixteen: each group's own statistics.
    assert not torch.allclose(keys, key_net(method, images), atol=1e-3)


def test_a_key_depends_on_its_own_group_only_and_never_on_the_other_view():
    method = tiny_method("moco_v2", shuffle_bn_groups=4)
    batch = torch.rand(16, 2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    shuffles = method.shuffle_generator.get_state()

    def keys_of(batch):
        method.shuffle_generator.set_state(shuffles)
        return [method.keys(view) for view in method.views(batch)]

    k1, k2 = keys_of(batch)
    groups = torch.randperm(16, generator=torch.Generator().set_state(shuffles)).tensor_split(4)
    mate, stranger = groups[0][1], groups[1][0]  # share image groups[0][0]'s group; another group
    for changed, same_group in ((mate, True), (stranger, False)):
        altered = batch.clone()
        altered[changed, 0] = torch.rand(1, 8, 8)
        new_k1, new_k2 = keys_of(altered)
        assert torch.equal(new_k2, k2)  # view 2's keys never saw view 1
        first = groups[0][0]
        assert torch.equal(new_k1[first], k1[first]) != same_group
        others = torch.ones(16, dtype=torch.bool)
        others[groups[0] if same_group else groups[1]] = False
        assert torch.equal(new_k1[others], k1[others])  # the other groups did not see the change


def test_the_shuffles_resume_from_the_method_state():
    """The shuffle generator is saved with the method (its extra state), so a resumed run draws on."""
    method = tiny_method("moco_v2")
    train_one_step(method)
    restored = tiny_method("moco_v2")
    assert not torch.equal(restored.shuffle_generator.get_state(), method.shuffle_generator.get_state())
    restored.load_state_dict(method.state_dict())
    images = torch.rand(16, 1, 8, 8)
    torch.testing.assert_close(restored.keys(images), method.keys(images))


# --- DINO -----------------------------------------------------------------------


def test_dino_center_is_an_ema_of_the_teacher_batch_mean():
    method = tiny_method("dino")
    for seed in range(3):
        batch = torch.rand(8, 2, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            teacher = method.teacher_head(method.teacher_encoder(torch.cat(method.views(batch))))
        center_before = method.center.clone()
        loss, _ = method.loss(method.views(batch))
        loss.backward()
        method.on_step_end(seed, 100)
        expected = 0.9 * center_before + 0.1 * teacher.mean(dim=0, keepdim=True)
        torch.testing.assert_close(method.center, expected)
    assert method.center.abs().sum() > 0


def test_dino_teacher_temperature_warms_up_linearly_then_holds():
    assert warmup_temperature(0.0, 0.04, 0.07, 0.3) == pytest.approx(0.04)
    assert warmup_temperature(0.15, 0.04, 0.07, 0.3) == pytest.approx(0.055)
    assert warmup_temperature(0.3, 0.04, 0.07, 0.3) == pytest.approx(0.07)
    assert warmup_temperature(0.9, 0.04, 0.07, 0.3) == pytest.approx(0.07)
    assert warmup_temperature(0.0, 0.04, 0.07, 0.0) == pytest.approx(0.07)
    method = tiny_method("dino")
    seen = [method.teacher_temperature]
    for step in range(100):
        method.on_step_end(step, 100)
        seen.append(method.teacher_temperature)
    assert seen[0] == pytest.approx(0.04) and seen[15] == pytest.approx(0.055)
    assert seen[30:] == pytest.approx([0.07] * 71)


def test_dino_last_layer_is_weight_normalised():
    layer = UnitRowLinear(4, 3)
    x = torch.randn(5, 4)
    before = layer(x)
    with torch.no_grad():
        layer.weight.mul_(torch.tensor([[2.0], [5.0], [0.1]]))
    torch.testing.assert_close(layer(x), before)


# --- SwAV -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dino", "swav"])
def test_sharpened_logits_stay_float32_under_bf16_autocast(name, monkeypatch):
    """DINO's last layer and SwAV's prototype scores feed temperatures of 0.04-0.1: computed in float32
    (what the float32 product of the same inputs gives), not rounded to bf16 first."""
    method = tiny_method(name)
    captured = []
    if name == "dino":
        layer = method.head.last_layer
        layer.register_forward_hook(lambda module, inputs, output: captured.append((inputs[0], output)))
        weight = torch.nn.functional.normalize(layer.weight, dim=1)
    else:
        monkeypatch.setattr("selfsup.methods.swav.sinkhorn", lambda scores, *a: captured.append(scores) or scores)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        method.loss(method.views(torch.rand(8, 2, 1, 8, 8, generator=torch.Generator().manual_seed(0))))
    if name == "dino":
        (inputs, logits), *_ = captured
        torch.testing.assert_close(logits, inputs.float() @ weight.T)
    else:
        logits = captured[0]
    assert logits.dtype == torch.float32


@pytest.mark.parametrize("bias", [0.0, 1.0])
def test_sinkhorn_spreads_the_batch_equally_over_prototypes(bias):
    batch, prototypes = 64, 8
    scores = torch.tanh(torch.randn(batch, prototypes, generator=torch.Generator().manual_seed(0)))
    scores[:, 0] += bias  # every sample prefers prototype 0
    softmax_share = torch.softmax(scores / 0.05, dim=1).sum(dim=0) / (batch / prototypes)
    for iterations, tolerance in [(3, 0.7), (30, 0.05)]:
        codes = sinkhorn(scores, 0.05, iterations)
        torch.testing.assert_close(codes.sum(dim=1), torch.ones(batch))
        share = codes.sum(dim=0) / (batch / prototypes)
        assert (share - 1).abs().max() < tolerance, (iterations, share)
        assert (share - 1).abs().max() < (softmax_share - 1).abs().max()


def test_swav_prototypes_are_unit_vectors_after_every_step():
    method = tiny_method("swav")
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(10))
    train_one_step(method)
    assert not torch.allclose(method.prototypes.weight.norm(dim=1), torch.ones(10))
    method.on_step_end(0, 10)
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(10))


# --- registry, trainer and parameters -------------------------------------------


@pytest.mark.parametrize("name", ZOO)
def test_each_method_trains_through_the_trainer_and_keeps_only_the_encoder(name):
    views = np.random.default_rng(0).integers(0, 256, (64, 2, 1, 8, 8), dtype=np.uint8)
    params = PretrainingParams(
        method=name,
        epochs=1,
        batch_size=16,
        warmup_epochs=0,
        small_cnn={"widths": [4, 8]},
        **{name: SMALL_HEADS.get(name, {})},
    )
    result = pretrain(CachedViews(views), params)
    assert name in METHODS and result.summary["steps"] == 4
    assert np.isfinite(result.history["loss"]).all()
    assert all(key.startswith("backbone.") or key in ("mean", "std") for key in result.checkpoint["state_dict"])


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"moco_v2": {"temperature": 0}}, "pretraining.moco_v2.temperature=0"),
        ({"moco_v2": {"momentum": 1.0}}, "pretraining.moco_v2.momentum=1.0"),
        ({"simclr": {"rotation_weight": -0.1}}, "pretraining.simclr.rotation_weight=-0.1"),
        ({"simclr": {"rotation_scale": 0}}, "pretraining.simclr.rotation_scale=0"),
        ({"simclr": {"rotation_scale": 1.5}}, "pretraining.simclr.rotation_scale=1.5"),
        ({"moco_v2": {"queue_size": 0}}, "pretraining.moco_v2.queue_size=0"),
        ({"moco_v3": {"momentum": -0.1}}, "pretraining.moco_v3.momentum=-0.1"),
        ({"byol": {"momentum": 1.5}}, "pretraining.byol.momentum=1.5"),
        ({"simsiam": {"projection_dim": 0}}, "pretraining.simsiam.projection_dim=0"),
        ({"barlow_twins": {"off_diagonal_weight": -1}}, "pretraining.barlow_twins.off_diagonal_weight=-1"),
        ({"vicreg": {"eps": 0}}, "pretraining.vicreg.eps=0"),
        ({"dino": {"teacher_temperature": 0}}, "pretraining.dino.teacher_temperature=0"),
        ({"dino": {"center_momentum": 1}}, "pretraining.dino.center_momentum=1"),
        ({"dino": {"teacher_warmup_fraction": 2}}, "pretraining.dino.teacher_warmup_fraction=2"),
        ({"swav": {"sinkhorn_epsilon": 0}}, "pretraining.swav.sinkhorn_epsilon=0"),
        ({"swav": {"n_prototypes": 1}}, "pretraining.swav.n_prototypes=1"),
        ({"swav": {"temprature": 0.1}}, "pretraining.swav.temprature"),
    ],
)
def test_nonsense_hyperparameters_are_refused_by_name(values, fragment):
    with pytest.raises(ParameterError) as error:
        validate(PretrainingParams, "pretraining", values)
    assert fragment in str(error.value)
