"""Checks across stages' parameters and against the dataset's size, before any node runs.

The schemas in ``selfsup.config`` check each value on its own. Some values are
only wrong given another stage's value or the data: a ViT patch larger than the
views, local crops larger than the global views, a batch larger than the
training set (the last partial batch is dropped), a kNN k larger than the labelled training set, a label fraction that
leaves a class without an example, a method or backbone of the other modality
(an image method on texts). The dataset's outline (headers, shapes, file
lists; no decoding) answers those in well under a second; texts are read whole
for it (a second for WordNet's 82,000 glosses). A detection run checks its encoder
(one with spatial feature maps) and its COCO annotation file against the images' headers.
"""

from __future__ import annotations

from selfsup.config import (
    SCHEMAS,
    AugmentationParams,
    DetectionParams,
    EvaluationParams,
    MultiCropParams,
    PretrainingParams,
    validate,
)
from selfsup.config.names import (
    BACKBONE_NAMES,
    METHOD_NAMES,
    TEXT_BACKBONE_NAMES,
    TEXT_DATASETS,
    TEXT_METHOD_NAMES,
    VIT_BACKBONES,
    VIT_METHODS,
)
from selfsup.data.sources import DatasetOutline, outline_image_set
from selfsup.errors import ParameterError
from selfsup.label_fractions import label_fraction
from selfsup.text.readers import outline_text_set

# The outline of a dataset by its ingestion.dataset; images' for every other name.
TEXT_OUTLINES = dict.fromkeys(TEXT_DATASETS, outline_text_set)
# (methods, backbones) of each modality.
MODALITY_NAMES = {"image": (METHOD_NAMES, BACKBONE_NAMES), "text": (TEXT_METHOD_NAMES, TEXT_BACKBONE_NAMES)}


def validate_run(values: dict[str, dict], used: set[str]) -> dict:
    """Validate every stage's parameters in ``values``; when the run ingests (``"ingestion"``
    in ``used``), check the stages it runs against the dataset's outline too.

    A run of later stages alone is checked by those stages when they start.
    """
    params = {
        section: validate(SCHEMAS[section], section, section_values) for section, section_values in values.items()
    }
    if "ingestion" in used and "pretraining" in used:
        check_modality(params["ingestion"].dataset, params["pretraining"])
    if "ingestion" in used:
        ingestion = params["ingestion"]
        check_run(
            TEXT_OUTLINES.get(ingestion.dataset, outline_image_set)(ingestion),
            **{
                section: params[section] for section in ("augmentation", "pretraining", "evaluation") if section in used
            },
        )
    if "detection" in used:
        check_detection(params["detection"])
    return params


def check_run(
    outline: DatasetOutline,
    augmentation: AugmentationParams | None = None,
    pretraining: PretrainingParams | None = None,
    evaluation: EvaluationParams | None = None,
) -> None:
    """Raise one ``ParameterError`` for the first parameter that this dataset cannot serve."""
    if pretraining is not None:
        view_size = tuple(augmentation.output_size or outline.image_size) if augmentation else outline.image_size
        _check_backbone(pretraining, view_size)
        _check_local_crops(pretraining, view_size)
        if pretraining.batch_size > outline.n_train:
            raise ParameterError(
                f"pretraining.batch_size={pretraining.batch_size} is larger than the {outline.n_train} "
                "training images (a partial last batch is dropped, so no step would run); lower it"
            )
    if evaluation is not None and outline.train_labels is not None:
        _check_evaluation(evaluation, outline)


def check_detection(detection: DetectionParams) -> None:
    """The detection stage's inputs: pycocotools, an encoder with spatial feature maps, a readable COCO folder."""
    # Imported here: they load torch, which only a run that detects needs.
    from selfsup.detection.coco import check_coco
    from selfsup.detection.scoring import coco_tools
    from selfsup.embedding import load_checkpoint
    from selfsup.models import BACKBONES, build_encoder, has_spatial_maps

    coco_tools()
    config = load_checkpoint(detection.checkpoint)["config"]
    if config["backbone"] not in BACKBONES or not has_spatial_maps(build_encoder(config)):
        raise ParameterError(
            f"detection.checkpoint={detection.checkpoint!r} holds a {config['backbone']!r} encoder, which has no "
            f"spatial feature maps to build a detector on; train an image encoder ({', '.join(BACKBONES)})"
        )
    if detection.source == "coco":
        if not detection.coco.annotations or not detection.coco.images:
            raise ParameterError(
                "detection.source='coco' needs detection.coco.annotations (the JSON file) and detection.coco.images "
                f"(its image folder); got {detection.coco.annotations!r} and {detection.coco.images!r}"
            )
        check_coco(detection.coco.annotations, detection.coco.images)


def check_modality(dataset: str, pretraining: PretrainingParams) -> None:
    """The method and the backbone must be of the dataset's modality: images or texts."""
    modality = "text" if dataset in TEXT_DATASETS else "image"
    methods, backbones = MODALITY_NAMES[modality]
    for parameter, name, allowed in (
        ("method", pretraining.method, methods),
        ("backbone", pretraining.backbone, backbones),
    ):
        if name not in allowed:
            raise ParameterError(
                f"pretraining.{parameter}={name!r} does not train on {modality}s (ingestion.dataset={dataset!r}); "
                f"use one of {', '.join(allowed)}"
                + ("; for texts, kedro run --env text_wordnet sets them" if modality == "text" else "")
            )


def _check_backbone(pretraining: PretrainingParams, view_size: tuple[int, int]) -> None:
    backbone = pretraining.backbone
    if pretraining.method in VIT_METHODS and backbone not in VIT_BACKBONES:
        raise ParameterError(
            f"pretraining.method={pretraining.method!r} needs a ViT backbone: set pretraining.backbone to "
            f"{' or '.join(VIT_BACKBONES)} (got pretraining.backbone={backbone!r})"
        )
    if backbone not in VIT_BACKBONES:
        return
    patch = getattr(pretraining, backbone).patch_size
    views = f"{view_size[0]}×{view_size[1]} views (augmentation.output_size, else the image size)"
    if patch > min(view_size):
        raise ParameterError(
            f"pretraining.{backbone}.patch_size={patch} is larger than the {views}; "
            f"lower pretraining.{backbone}.patch_size to at most {min(view_size)}"
        )
    if any(side % patch for side in view_size):
        divisors = [p for p in range(1, min(view_size) + 1) if not view_size[0] % p and not view_size[1] % p]
        raise ParameterError(
            f"pretraining.{backbone}.patch_size={patch} does not divide the {views}: the pixels past the "
            f"last whole patch would never be seen; use one of {divisors} or change augmentation.output_size"
        )


def _check_local_crops(pretraining: PretrainingParams, view_size: tuple[int, int]) -> None:
    """The method's local crops (multi-crop) are smaller than its global views and, on a ViT, whole patches."""
    method, backbone = pretraining.method, pretraining.backbone
    section = getattr(pretraining, method)
    if not isinstance(section, MultiCropParams) or not section.local_crops:
        return
    name, size = f"pretraining.{method}.local_crop_size", list(section.local_crop_size)
    if size[0] > view_size[0] or size[1] > view_size[1]:
        raise ParameterError(
            f"{name}={size} is larger than the {view_size[0]}×{view_size[1]} global views "
            f"(augmentation.output_size, else the image size); local crops are the small views: lower it to at "
            f"most {list(view_size)} (or set pretraining.{method}.local_crops to 0)"
        )
    if backbone in VIT_BACKBONES:
        patch = getattr(pretraining, backbone).patch_size
        if any(side % patch for side in size):
            raise ParameterError(
                f"{name}={size} is not a multiple of pretraining.{backbone}.patch_size={patch}: the pixels past "
                "the last whole patch would never be seen"
            )


def _check_evaluation(evaluation: EvaluationParams, outline: DatasetOutline) -> None:
    n_labelled = len(outline.train_labels)
    too_large = [k for k in evaluation.knn_k if k > n_labelled]
    if too_large:
        raise ParameterError(
            f"evaluation.knn_k={too_large} exceeds the {n_labelled} labelled training images; "
            f"use values up to {n_labelled}"
        )
    for fraction in evaluation.label_fractions:
        label_fraction(outline.train_labels, fraction, evaluation.seed)
