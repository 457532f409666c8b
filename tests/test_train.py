import numpy as np
import pytest
import torch

from selfsup import devices
from selfsup.config import PretrainingParams
from selfsup.data.cached_views import CachedViews
from selfsup.encoder_checkpoint import encoder_from_checkpoint
from selfsup.methods import METHODS
from selfsup.schedule import StepPlan, warmup_cosine
from selfsup.train import pretrain


def tiny_views(n=96, k=3, seed=0) -> CachedViews:
    return CachedViews(np.random.default_rng(seed).integers(0, 256, (n, k, 1, 8, 8), dtype=np.uint8))


def tiny_params(**overrides) -> PretrainingParams:
    values = {"epochs": 2, "batch_size": 32, "warmup_epochs": 0, "small_cnn": {"widths": [8, 16]}}
    return PretrainingParams(**{**values, **overrides})


def test_warmup_then_cosine_to_zero():
    factors = [warmup_cosine(step, 5, 25) for step in range(25)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[5] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[5:], factors[6:]))
    assert warmup_cosine(25, 5, 25) == pytest.approx(0.0)


def test_same_seed_same_encoder_and_history():
    first = pretrain(tiny_views(), tiny_params())
    second = pretrain(tiny_views(), tiny_params())
    for name, tensor in first.checkpoint["state_dict"].items():
        assert torch.equal(tensor, second.checkpoint["state_dict"][name]), name
    assert first.history["loss"].tolist() == second.history["loss"].tolist()
    assert first.summary["stopped_by"] == "epochs" and first.summary["steps"] == 2 * (96 // 32)


def test_checkpoint_rebuilds_the_trained_encoder():
    result = pretrain(tiny_views(), tiny_params())
    encoder = encoder_from_checkpoint(result.checkpoint)
    x = torch.rand(4, 1, 8, 8)
    assert encoder(x).shape == (4, 16)
    assert not encoder.training


def test_time_budget_stops_the_run():
    result = pretrain(tiny_views(), tiny_params(epochs=100000, time_budget_s=1.0))
    assert result.summary["stopped_by"] == "time_budget"
    assert result.summary["steps"] < 100000 * 3


def test_step_plan_fits_the_cosine_schedule_to_the_budget():
    plan = StepPlan(steps_per_epoch=10, params=tiny_params(epochs=100, time_budget_s=10.0))
    seconds_per_step = 0.1
    stops = [plan.after_step(step, step * seconds_per_step) for step in range(1, 101)]
    assert plan.total_steps == 100  # 10 s / 0.1 s per step, planned after the calibration steps
    assert stops[:-1] == [None] * 99 and stops[-1] == "time_budget"
    assert plan.lr_factor(99) < 0.01 and plan.lr_factor(50) > 0.4


def test_step_plan_is_refined_when_the_first_steps_were_slow():
    plan = StepPlan(steps_per_epoch=10, params=tiny_params(epochs=1000, time_budget_s=100.0))
    elapsed, stops = 0.0, []
    for step in range(1, 2000):
        elapsed += 1.0 if step <= 10 else 0.1  # warm-up steps ten times slower than the rest
        stops.append(plan.after_step(step, elapsed))
        if stops[-1]:
            break
    assert stops[-1] == "time_budget"
    assert elapsed == pytest.approx(100.0, abs=0.5)  # the budget is used, not the first plan's 100 steps
    assert len(stops) == pytest.approx(910, abs=5)


def test_time_budget_crossed_early_stops_at_that_step():
    plan = StepPlan(steps_per_epoch=10, params=tiny_params(epochs=100, time_budget_s=10.0))
    assert plan.after_step(3, 10.5) == "time_budget"


def test_step_plan_without_budget_counts_epochs():
    plan = StepPlan(steps_per_epoch=4, params=tiny_params(epochs=3))
    assert [plan.after_step(s, 0.0) for s in range(1, 13)][-1] == "epochs"
    assert plan.after_step(11, 0.0) is None


def test_batch_larger_than_data_is_refused():
    with pytest.raises(ValueError, match="pretraining.batch_size=256"):
        pretrain(tiny_views(n=100), tiny_params(batch_size=256))


def test_collapse_monitor_reads_the_encoder_at_the_last_step():
    result = pretrain(tiny_views(), tiny_params())
    measured = result.history["embedding_std"].dropna()
    assert measured.index[-1] == len(result.history) - 1
    assert result.summary["final_embedding_std"] == pytest.approx(measured.iloc[-1])
    assert result.summary["collapsed"] is False


def test_bf16_on_cpu_is_opt_in_and_needs_bf16_units(monkeypatch, caplog):
    float32 = pretrain(tiny_views(), tiny_params(epochs=1, device="cpu"))
    monkeypatch.setattr(devices, "cpu_has_bf16_units", lambda: False)
    with caplog.at_level("WARNING", logger="selfsup.devices"):
        fallback = pretrain(tiny_views(), tiny_params(epochs=1, device="cpu", mixed_precision_cpu=True))
    assert "no bf16 units (AMX or AVX-512 BF16); training in float32" in caplog.text
    assert fallback.history["loss"].tolist() == float32.history["loss"].tolist()
    monkeypatch.setattr(devices, "cpu_has_bf16_units", lambda: True)
    bf16 = pretrain(tiny_views(), tiny_params(epochs=1, device="cpu", mixed_precision_cpu=True))
    assert np.isfinite(bf16.history["loss"]).all()
    assert bf16.history["loss"].tolist() != float32.history["loss"].tolist()


BF16_CASES = {
    "mae": {"backbone": "vit_tiny", "vit_tiny": {"depth": 1, "patch_size": 2}},
    "beit": {"backbone": "vit_tiny", "vit_tiny": {"depth": 1, "patch_size": 2}, "beit": {"codebook_size": 8}},
    "moco_v2": {"moco_v2": {"queue_size": 64}},
    "jigsaw": {"jigsaw": {"grid": 2, "num_permutations": 4}},
}


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_under_bf16_autocast_with_float32_state(name, monkeypatch):
    """bf16 networks, float32 losses and method state (centres, queues, prototypes)."""
    monkeypatch.setattr(devices, "cpu_has_bf16_units", lambda: True)
    result = pretrain(
        tiny_views(),
        tiny_params(method=name, epochs=1, device="cpu", mixed_precision_cpu=True, **BF16_CASES.get(name, {})),
    )
    assert np.isfinite(result.history["loss"]).all()
    assert all(t.dtype == torch.float32 for t in result.checkpoint["state_dict"].values() if t.is_floating_point())
