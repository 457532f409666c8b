"""The detection stage without Kedro: its data, its encoders, the comparison and its metrics.

The data are canvases of the run's labelled images (training canvases from the
training split, test canvases from the test split) or a COCO-format folder, split
into training and test images by ``detection.canvas_seed``. The encoders: the trained
(SSL) encoder of ``detection.checkpoint``; a random-init encoder of its architecture,
seeded by each run's seed; a supervised encoder of its architecture, trained once
(seed: the first of ``detection.seeds``) on the run's labelled training images.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch

from selfsup.config import AugmentationParams, DetectionParams
from selfsup.detection.boxed_images import BoxedImages
from selfsup.detection.canvases import make_canvases
from selfsup.detection.coco import read_coco
from selfsup.detection.comparison import (
    EncoderFactory,
    detection_comparison,
    summary,
    supervised_encoder,
)
from selfsup.detection.train import Detections
from selfsup.encoder_checkpoint import encoder_from_checkpoint, random_encoder
from selfsup.errors import DataError

logger = logging.getLogger(__name__)


def _labelled_split(image_index: pd.DataFrame, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions and labels of the labelled images of ``split``."""
    rows = np.flatnonzero(image_index["label"].notna().to_numpy() & (image_index["split"] == split).to_numpy())
    return rows, image_index["label"].to_numpy(dtype=np.float64, na_value=-1)[rows].astype(np.int64)


def class_names(image_index: pd.DataFrame) -> tuple[str, ...]:
    """Label → name for labels 0 … max: the index's ``class_name`` where the dataset names its classes."""
    labelled = image_index[image_index["label"].notna()]
    names = {}
    if "class_name" in labelled:
        named = labelled[labelled["class_name"].notna()]
        names = dict(zip(named["label"].astype(int), named["class_name"].astype(str)))
    return tuple(names.get(label, str(label)) for label in range(int(labelled["label"].max()) + 1))


def detection_data(
    images: np.ndarray, image_index: pd.DataFrame, params: DetectionParams, channels: int
) -> tuple[BoxedImages, BoxedImages]:
    """(training, test) images with their boxes."""
    if params.source == "coco":
        every = read_coco(params.coco.annotations, params.coco.images, params.canvas_size, channels)
        order = np.random.default_rng(params.canvas_seed).permutation(len(every))
        n_test = min(len(every) - 1, max(1, round(len(every) * params.coco.test_fraction)))
        return every.subset(np.sort(order[n_test:])), every.subset(np.sort(order[:n_test]))
    train, train_labels = _labelled_split(image_index, "train")
    test, test_labels = _labelled_split(image_index, "test")
    if not len(train) or not len(test):
        raise DataError(
            "detection.source='canvases' pastes labelled images of the run's train and test splits; this run has "
            f"{len(train)} labelled training and {len(test)} labelled test images. Use detection.source='coco'"
        )
    names = class_names(image_index)
    made = {}
    for split, positions, labels, count, stream in (
        ("train", train, train_labels, params.train_canvases, 0),
        ("test", test, test_labels, params.test_canvases, 1),
    ):
        made[split] = make_canvases(
            np.asarray(images[positions]),
            labels,
            names,
            count,
            params.canvas_size,
            params.objects_per_canvas,
            params.object_size,
            params.max_iou,
            seed=(params.canvas_seed, stream),
        )
    return made["train"], made["test"]


def _encoders(
    checkpoint: dict,
    images: np.ndarray,
    image_index: pd.DataFrame,
    params: DetectionParams,
    augmentation: AugmentationParams,
    device: torch.device,
) -> tuple[dict[str, EncoderFactory], dict]:
    """The compared encoders by name, and how the supervised one trained (empty when not compared)."""
    ssl, config = encoder_from_checkpoint(checkpoint), checkpoint["config"]
    factories: dict[str, EncoderFactory] = {
        "ssl": lambda seed: (ssl, params.encoder_lr_scale),
        "random_init": lambda seed: (random_encoder(config, seed), 1.0),
    }
    supervised_run: dict = {}
    if "supervised" in params.encoders:
        train, train_labels = _labelled_split(image_index, "train")
        test, test_labels = _labelled_split(image_index, "test")
        if not len(train):
            raise DataError("detection.encoders names 'supervised', which trains on labels: the run's images have none")
        encoder, run = supervised_encoder(
            config,
            np.asarray(images[train]),
            train_labels,
            np.asarray(images[test]),
            test_labels,
            params.supervised,
            augmentation,
            params.seeds[0],
            device,
        )
        logger.info("supervised encoder: %s", run)
        factories["supervised"] = lambda seed: (encoder, params.encoder_lr_scale)
        supervised_run = {"labels": run.labels, "steps": run.steps, "test_accuracy": run.accuracy}
    return {name: factories[name] for name in params.encoders}, supervised_run


def detection_stage(
    checkpoint: dict,
    images: np.ndarray,
    image_index: pd.DataFrame,
    params: DetectionParams,
    augmentation: AugmentationParams,
    device: torch.device,
) -> tuple[dict, BoxedImages, dict[tuple[str, str], Detections]]:
    """``detection_metrics``: ``table`` (per encoder and mode, each score's mean and standard deviation over
    the seeds), ``runs`` (every run), ``data``, ``recipe``, ``supervised_encoder`` (how it trained) and
    ``encoder_training`` (the checkpoint's training summary: whose encoder these numbers are, for
    record_run); then the test images and the figure's detections."""
    train, test = detection_data(images, image_index, params, checkpoint["config"]["in_channels"])
    logger.info("detection: %d training and %d test images", len(train), len(test))
    encoders, supervised_run = _encoders(checkpoint, images, image_index, params, augmentation, device)
    runs, examples = detection_comparison(encoders, train, test, params, device)
    metrics = {
        "table": summary(runs),
        "runs": [asdict(run) for run in runs],
        "data": {
            "source": params.source,
            "train_images": len(train),
            "test_images": len(test),
            "test_objects": int(sum(len(labels) for labels in test.labels)),
            "image_size": int(test.images.shape[-1]),
            "class_names": list(test.class_names),
        },
        "recipe": (
            f"FCOS, {params.steps} steps of {params.batch_size} images, AdamW at {params.learning_rate} "
            f"(pretrained encoders fine-tuned at × {params.encoder_lr_scale}), seeds {list(params.seeds)}"
        ),
        "supervised_encoder": supervised_run,
        "encoder_training": checkpoint.get("training", {}),
    }
    return metrics, test, examples
