"""The detection comparison: one detector recipe on several encoders, frozen and fine-tuned, over seeds.

Every run builds FCOS on a fresh copy of its encoder (the head's weights drawn from the
run's seed), trains it for ``detection.steps`` steps on the training images and scores
its detections on the test images: COCO mAP and mAP50, over the classes and
class-agnostic. A pretrained encoder fine-tunes at ``encoder_lr_scale`` times the head's
rate; the random-init encoder (a new one per seed) at the head's rate, the stronger baseline.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from selfsup.config import AugmentationParams, DetectionParams, FinetuneParams, SupervisedParams
from selfsup.detection.boxed_images import BoxedImages
from selfsup.detection.detector import build_detector
from selfsup.detection.scoring import coco_map
from selfsup.detection.train import Detections, detect, train_detector
from selfsup.devices import cpu_has_bf16_units
from selfsup.encoder_checkpoint import random_encoder
from selfsup.finetune import FinetuneRun, finetune
from selfsup.models import Encoder

logger = logging.getLogger(__name__)

MODES = {"frozen": ("frozen",), "finetune": ("finetune",), "both": ("frozen", "finetune")}
SCORES = ("map", "map50", "map_agnostic", "map50_agnostic")

# An encoder of the comparison, for a run's seed: the encoder (copied by the run) and its fine-tuning lr scale.
EncoderFactory = Callable[[int], tuple[Encoder, float]]


@dataclass(frozen=True)
class DetectionRun:
    encoder: str
    mode: str
    seed: int
    map: float
    map50: float
    map_agnostic: float
    map50_agnostic: float
    final_loss: float
    wall_time_s: float


def supervised_encoder(
    config: dict,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    params: SupervisedParams,
    augmentation: AugmentationParams,
    seed: int,
    device: torch.device,
) -> tuple[Encoder, FinetuneRun]:
    """An encoder of architecture ``config`` trained from random init with a linear head on the labels,
    with the fine-tuning recipe (``selfsup.finetune``) and the training views' augmentations."""
    encoder = random_encoder(config, seed)
    recipe = FinetuneParams(
        steps=params.steps, batch_size=params.batch_size, learning_rate=params.learning_rate, seed=seed
    )
    run = finetune(encoder, train_images, train_labels, test_images, test_labels, recipe, augmentation, False, device)
    return encoder.cpu().eval(), run


def detection_run(
    encoder: Encoder,
    frozen: bool,
    encoder_lr_scale: float,
    train: BoxedImages,
    test: BoxedImages,
    params: DetectionParams,
    seed: int,
    device: torch.device,
) -> tuple[Detections, dict[str, float], float, float]:
    """Train a detector on a copy of ``encoder`` and score it: (test detections, scores, final loss, seconds).
    The encoder runs under bf16 autocast where ``detection.mixed_precision`` asks and the device has bf16 units."""
    torch.manual_seed(seed)
    detector = build_detector(
        copy.deepcopy(encoder),
        len(train.class_names),
        train.images.shape[-1],
        frozen,
        params.fpn_channels,
        params.score_threshold,
        params.mixed_precision and (device.type == "cuda" or cpu_has_bf16_units()),
    )
    final_loss, seconds = train_detector(
        detector,
        train,
        params.steps,
        params.batch_size,
        params.learning_rate,
        encoder_lr_scale,
        params.weight_decay,
        params.warmup_steps,
        seed,
        device,
    )
    found = detect(detector, test.images, device)
    classes, agnostic = coco_map(test, found), coco_map(test, found, class_agnostic=True)
    scores = {**classes, "map_agnostic": agnostic["map"], "map50_agnostic": agnostic["map50"]}
    return found, scores, final_loss, seconds


def detection_comparison(
    encoders: dict[str, EncoderFactory],
    train: BoxedImages,
    test: BoxedImages,
    params: DetectionParams,
    device: torch.device,
) -> tuple[list[DetectionRun], dict[tuple[str, str], Detections]]:
    """Every encoder × backbone mode × seed: the runs, and each encoder and mode's test detections
    of its first seed (for the figure)."""
    runs, examples = [], {}
    for name, make in encoders.items():
        for mode in MODES[params.backbone_mode]:
            for seed in params.seeds:
                encoder, encoder_lr_scale = make(seed)
                found, scores, final_loss, seconds = detection_run(
                    encoder, mode == "frozen", encoder_lr_scale, train, test, params, seed, device
                )
                run = DetectionRun(name, mode, seed, **scores, final_loss=final_loss, wall_time_s=round(seconds, 2))
                logger.info("detection: %s", asdict(run))
                runs.append(run)
                examples.setdefault((name, mode), found)
    return runs, examples


def summary(runs: list[DetectionRun]) -> dict[str, dict[str, dict[str, float]]]:
    """``{encoder: {mode: {score: mean over seeds, score_std: their standard deviation, seeds: n}}}``."""
    table: dict = {}
    for run in runs:
        table.setdefault(run.encoder, {}).setdefault(run.mode, []).append(run)
    return {
        encoder: {
            mode: {
                **{score: float(np.mean([getattr(r, score) for r in group])) for score in SCORES},
                **{f"{score}_std": float(np.std([getattr(r, score) for r in group])) for score in SCORES},
                "seeds": len(group),
            }
            for mode, group in modes.items()
        }
        for encoder, modes in table.items()
    }
