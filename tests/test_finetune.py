"""The finetune stage: the recipe on digits, its off switch, its time budget and its label subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kedro.runner import SequentialRunner
from sklearn.datasets import load_digits

from selfsup.config import AugmentationParams, FinetuneParams
from selfsup.encoder_checkpoint import random_encoder
from selfsup.finetune import Classifier, finetune, finetune_protocol, interpolated, model_outputs, predict
from selfsup.label_fractions import label_fraction
from selfsup.pipelines import augmentation, ingestion, pretraining
from selfsup.pipelines import finetune as finetune_stage
from selfsup.pipelines.evaluation.nodes import record_run
from selfsup.pipelines.finetune.nodes import finetune_encoders
from selfsup.probe import fit_linear_probe
from tests.conftest import base_parameters
from tests.pipelines.test_stages import catalog_for

CONFIG = {
    "backbone": "small_cnn",
    "in_channels": 1,
    "image_size": [8, 8],
    "backbone_params": {"widths": [8, 16]},
    "mean": [0.3],
    "std": [0.4],
}


@pytest.fixture(scope="module")
def digits():
    """uint8 (N, 1, 8, 8) digits and their labels; the first 1,400 train, the rest test."""
    data = load_digits()
    images = (data.images * (255 / 16)).round().astype(np.uint8)[:, None]
    return images, data.target.astype(np.int64)


def _augmentation() -> AugmentationParams:
    return AugmentationParams(**base_parameters()["augmentation"])


def test_fine_tuning_learns_the_labels_and_changes_the_whole_encoder(digits):
    images, labels = digits
    encoder = random_encoder(CONFIG, seed=0)
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    params = FinetuneParams(steps=60, batch_size=64, learning_rate=3e-3)
    run = finetune(
        encoder, images[:1400], labels[:1400], images[1400:], labels[1400:], params, _augmentation(), False, "cpu"
    )
    assert run.steps == 60 and run.stopped_by == "steps" and run.labels == 1400
    assert run.accuracy > 0.3  # chance is 0.1
    changed = [name for name, value in encoder.state_dict().items() if not torch.equal(value, before[name])]
    assert "backbone.body.0.0.weight" in changed  # the first conv layer trained too


@pytest.mark.parametrize("classes", [(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (3, 7), (1, 4, 8)])
def test_a_probe_started_head_predicts_what_the_linear_probe_predicts(digits, classes):
    """LP-FT's starting point is the probe: the same classes for every test image, including with two
    classes (scikit-learn's one-logit model) and with labels that leave classes of the head out."""
    images, labels = digits
    chosen = np.isin(labels, classes)
    train = chosen & (np.arange(len(labels)) < 1400)
    model = Classifier(random_encoder(CONFIG, seed=0), n_classes=10)
    model.start_from_probe(images[train], labels[train], torch.device("cpu"))
    probe = fit_linear_probe(model_outputs(model.encoder, images[train], "cpu"), labels[train])
    test_features = model_outputs(model.encoder, images[1400:], "cpu")
    assert np.array_equal(predict(model, images[1400:], "cpu"), probe.predict(test_features))


def _first_conv_moved(digits, params: FinetuneParams, pretrained: bool) -> float:
    """How far fine-tuning on 300 digits moves any weight of the encoder's first conv layer."""
    images, labels = digits
    encoder = random_encoder(CONFIG, 0)
    before = encoder.backbone.body[0][0].weight.detach().clone()
    train, test = slice(0, 300), slice(1400, None)
    augmentation = _augmentation()
    finetune(encoder, images[train], labels[train], images[test], labels[test], params, augmentation, pretrained, "cpu")
    return float((encoder.backbone.body[0][0].weight.detach() - before).abs().max())


def test_a_pretrained_encoder_learns_at_the_scaled_rate_and_a_random_init_one_at_the_full_rate(digits):
    params = FinetuneParams(steps=1, batch_size=64, learning_rate=0.1, pretrained_lr_scale=1e-6)
    moved = {pretrained: _first_conv_moved(digits, params, pretrained) for pretrained in (True, False)}
    # AdamW's first step moves a weight by about its rate
    assert moved[True] < 1e-5 < 1e-2 < moved[False]


def test_a_pretrained_model_keeps_wise_ft_alpha_of_the_way_from_its_probe_start(digits):
    moved = {
        alpha: _first_conv_moved(
            digits,
            FinetuneParams(steps=3, batch_size=64, learning_rate=0.1, pretrained_lr_scale=1.0, wise_ft_alpha=alpha),
            pretrained=True,
        )
        for alpha in (1e-6, 1.0)
    }
    assert moved[1e-6] < 1e-5 < 1e-2 < moved[1.0]
    start, tuned = {"w": torch.zeros(2), "n": torch.tensor(0)}, {"w": torch.ones(2), "n": torch.tensor(7)}
    halfway = interpolated(start, tuned, 0.5)
    assert torch.equal(halfway["w"], torch.full((2,), 0.5)) and halfway["n"] == 7


def test_a_time_budget_stops_fine_tuning_early(digits):
    images, labels = digits
    params = FinetuneParams(steps=10_000, batch_size=16)
    run = finetune(
        random_encoder(CONFIG, 0), images[:100], labels[:100], images[1400:], labels[1400:], params, _augmentation(),
        False, "cpu", budget_s=0.5,
    )  # fmt: skip
    assert run.stopped_by == "time_budget" and 0 < run.steps < 10_000


def test_each_encoder_starts_from_its_own_weights_on_the_probes_label_subsets(digits):
    images, labels = digits
    train, test = np.arange(1400), np.arange(1400, len(labels))
    encoder = random_encoder(CONFIG, 0)
    initial = {name: value.clone() for name, value in encoder.state_dict().items()}
    params = FinetuneParams(steps=3, batch_size=16)
    metrics = finetune_protocol(
        {"ssl": (encoder, True)}, images, train, labels[train], test, labels[test], (0.01, 0.1), 0, params,
        _augmentation(), torch.device("cpu"),
    )  # fmt: skip
    assert set(metrics["ssl"]) == {"finetune_1pct", "finetune_10pct"}
    runs = metrics["finetune_runs"]["ssl"]
    assert runs["finetune_1pct"]["labels"] == len(label_fraction(labels[train], 0.01, 0))
    assert runs["finetune_10pct"]["labels"] == len(label_fraction(labels[train], 0.1, 0))
    again = finetune_protocol(
        {"ssl": (random_encoder(CONFIG, 0), True)}, images, train, labels[train], test, labels[test], (0.1,), 0,
        params, _augmentation(), torch.device("cpu"),
    )  # fmt: skip
    # the 10 % run after the 1 % run started from the initial weights, not from the 1 % run's
    assert again["ssl"]["finetune_10pct"] == metrics["ssl"]["finetune_10pct"]
    assert any(not torch.equal(value, initial[name]) for name, value in encoder.state_dict().items())


def test_the_off_switch_writes_no_rows_and_the_metrics_keep_the_protocol_alone():
    parameters = base_parameters()
    off = finetune_encoders(
        {"config": CONFIG},  # never read: nothing is built when the stage is off
        np.zeros((4, 1, 8, 8), np.uint8),
        None,
        {**parameters["finetune"], "enabled": False},
        parameters["augmentation"],
        parameters["evaluation"],
        0,
    )
    assert off == {}
    protocol = {"ssl": {"linear": 0.9}, "raw_pixels": {"linear": 0.8}, "random_init": {"linear": 0.7}}
    metrics, _ = record_run(protocol, off, {}, {}, {}, {}, "base")
    assert {key: metrics[key] for key in protocol} == protocol and "finetune_runs" not in metrics
    joined, _ = record_run(protocol, {"ssl": {"finetune_1pct": 0.95}, "finetune_runs": {}}, {}, {}, {}, {}, "base")
    assert joined["ssl"] == {"linear": 0.9, "finetune_1pct": 0.95} and joined["raw_pixels"] == {"linear": 0.8}


@pytest.mark.slow  # the default digits run's pretraining (about 30 s on 2 quiet cores), then 4 fine-tuning runs
def test_fine_tuned_ssl_beats_fine_tuned_random_init_on_digits(tmp_path):
    parameters = base_parameters()
    parameters["pretraining"]["checkpoint"] = {"directory": None}
    catalog = catalog_for(tmp_path, parameters)
    for stage in (ingestion, augmentation, pretraining, finetune_stage):
        SequentialRunner().run(stage.create_pipeline(), catalog)
    metrics = catalog.load("finetune_metrics")
    for key in ("finetune_1pct", "finetune_10pct"):
        assert metrics["ssl"][key] > metrics["random_init"][key], (key, metrics)
