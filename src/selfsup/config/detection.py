"""``detection``: an object detector on the trained encoder, compared with baseline encoders."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from selfsup.config.base import StrictParams, check_range

DETECTION_ENCODERS = ("ssl", "random_init", "supervised")


class CocoParams(StrictParams):
    """A user's COCO-format annotation file and its image folder (``detection.source: coco``)."""

    annotations: str | None = None  # the JSON file: images, annotations (bbox [x, y, w, h] in pixels), categories
    images: str | None = None  # the folder that the images' file_name entries are relative to
    test_fraction: float = Field(0.2, gt=0, lt=1)  # of the images, drawn with detection.canvas_seed, for the test set


class SupervisedParams(StrictParams):
    """The supervised baseline encoder: trained with a linear head on the training images' labels."""

    steps: int = Field(500, ge=1)
    batch_size: int = Field(128, ge=2)
    learning_rate: float = Field(1e-3, gt=0)


class DetectionParams(StrictParams):
    checkpoint: str = "data/06_models/encoder.pt"  # the SSL encoder the detector is built on
    source: Literal["canvases", "coco"] = "canvases"
    canvas_size: int = Field(96, ge=32)  # side of the square canvases (and of resized COCO images)
    train_canvases: int = Field(2000, ge=1)
    test_canvases: int = Field(500, ge=1)
    objects_per_canvas: tuple[int, int] = (1, 4)
    object_size: tuple[int, int] = (20, 44)  # side of a pasted image, drawn uniformly in pixels
    max_iou: float = Field(0.2, ge=0, le=1)  # of a pasted image's square with each one already placed
    canvas_seed: int = 0  # the canvases (the test set is fixed by it) or the COCO train/test draw
    coco: CocoParams = CocoParams()
    encoders: tuple[Literal["ssl", "random_init", "supervised"], ...] = Field(DETECTION_ENCODERS, min_length=1)
    backbone_mode: Literal["frozen", "finetune", "both"] = "both"
    seeds: tuple[int, ...] = Field((0, 1, 2), min_length=1)
    steps: int = Field(300, ge=1)  # optimizer steps of each detector run
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(1e-3, gt=0)  # AdamW, the detector head's and FPN's
    encoder_lr_scale: float = Field(0.1, gt=0, le=1)  # a pretrained encoder fine-tunes at learning_rate × this
    weight_decay: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(50, ge=0)
    fpn_channels: int = Field(64, ge=32, multiple_of=32)  # FCOS's head normalises in 32 groups
    score_threshold: float = Field(0.05, ge=0, lt=1)  # detections below it are dropped before scoring
    mixed_precision: bool = True  # the encoder under bf16 autocast on CUDA and on CPUs with bf16 units
    supervised: SupervisedParams = SupervisedParams()
    figure_canvases: int = Field(8, ge=1)  # test canvases drawn with their boxes in the report
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _canvases_can_hold_the_objects(self) -> DetectionParams:
        check_range("detection.objects_per_canvas", self.objects_per_canvas, 0, float("inf"))
        check_range("detection.object_size", self.object_size, 0, self.canvas_size)
        return self
