"""Parameters chosen from the images: every ``auto`` value of a run, resolved before it starts.

An environment writes ``auto`` where the data should decide (the ``folder``
environment does for channels, sizes, colour augmentations, batch size and the
evaluation's k, label fractions and clusters); any value given instead, in a
parameters file or with ``--params``, is kept as it is. Resolution reads what the
images are (``profile_images``): how many, how many labelled per class, their
native size and aspect, and whether their colour varies, from the tree's file list
and a seeded sample of up to ``SAMPLE`` decoded images. Each choice is logged with
its reason.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from selfsup.config import IngestionParams, validate
from selfsup.data.images import DECODE_ERRORS
from selfsup.data.sources import outline_image_set
from selfsup.data.trees import ArchiveTree, FolderTree, open_image_tree
from selfsup.errors import ParameterError
from selfsup.label_fractions import label_fraction

logger = logging.getLogger(__name__)

AUTO = "auto"
SAMPLE = 256
# Mean |channel difference| (0-255) above which an image counts as coloured; JPEG
# artefacts in grey images stay below 2.
COLOUR_CHROMA = 6.0
COLOUR_SHARE = 0.05  # the set is colour when at least this share of the sample is
LARGEST_SIDE = 32  # the short side images are reduced to at most (see choose_parameters)
VIEW_SCALE = 0.75  # views are this fraction of the image's side, from 24 pixels up


@dataclass(frozen=True)
class ImageProfile:
    images: int
    train: int  # images in the training split
    classes: int  # 0 when unlabelled
    smallest_class: int  # training images of the least frequent class (0 when unlabelled)
    train_labels: np.ndarray | None
    height: int  # median native size of the sample
    width: int
    colour: bool
    sampled: int


# The parameters that 'auto' chooses from the images; elsewhere 'auto' keeps its own meaning
# (``pretraining.device: auto`` is chosen from the hardware by the stage itself).
CHOSEN_FROM_IMAGES = {
    "ingestion": ("channels", "image_size"),
    "augmentation": ("output_size", "saturation", "grayscale_p", "blur_p"),
    "pretraining": ("batch_size",),
    "evaluation": ("knn_k", "label_fractions", "n_clusters"),
}


def _autos(values: dict[str, dict]) -> list[tuple[str, str]]:
    return [
        (section, key)
        for section, keys in CHOSEN_FROM_IMAGES.items()
        for key in keys
        if (values.get(section) or {}).get(key) == AUTO
    ]


def has_auto(values: dict[str, dict]) -> bool:
    return bool(_autos(values))


def profile_images(ingestion: dict) -> ImageProfile:
    """What the folder or archive that ``ingestion`` names holds (its split as ingestion will make it)."""
    if ingestion.get("dataset") != "folder":
        raise ParameterError(
            f"'auto' parameters are chosen from the images of ingestion.dataset: folder, not "
            f"{ingestion.get('dataset')!r}; give every 'auto' parameter a value"
        )
    # The outline needs no channels or size; stand-ins let the rest be validated.
    stand_ins = {"channels": 3, "image_size": (32, 32)}
    params = validate(
        IngestionParams, "ingestion", {**ingestion, **{k: v for k, v in stand_ins.items() if ingestion.get(k) == AUTO}}
    )
    tree = open_image_tree(params.path)
    outline = outline_image_set(params)
    sizes, chroma = _sample(tree, params.seed)
    counts = np.bincount(outline.train_labels) if outline.train_labels is not None else np.array([], dtype=int)
    counts = counts[counts > 0]
    return ImageProfile(
        images=len(tree.paths),
        train=outline.n_train,
        classes=len(counts),
        smallest_class=int(counts.min()) if len(counts) else 0,
        train_labels=outline.train_labels,
        height=int(np.median([height for height, _ in sizes])),
        width=int(np.median([width for _, width in sizes])),
        colour=bool(np.mean(np.asarray(chroma) > COLOUR_CHROMA) >= COLOUR_SHARE),
        sampled=len(sizes),
    )


def _sample(tree: FolderTree | ArchiveTree, seed: int) -> tuple[list[tuple[int, int]], list[float]]:
    """(height, width) and mean chroma of a seeded sample of the tree's images; undecodable ones skipped."""
    chosen = set(np.random.default_rng(seed).permutation(len(tree.paths))[:SAMPLE].tolist())
    sizes, chroma = [], []
    for index, source in tree.stream():
        if index not in chosen:
            continue
        try:
            with Image.open(source) as image:
                size = (image.height, image.width)
                image.thumbnail((64, 64))
                rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
        except DECODE_ERRORS:
            continue  # ingestion reports it, as on_error says
        sizes.append(size)
        chroma.append(float(np.abs(np.diff(rgb, axis=2)).max(axis=2).mean()))
    if not sizes:
        raise ParameterError(f"{tree.root}: none of the sampled images could be decoded, so 'auto' cannot be resolved")
    return sizes, chroma


def choose_parameters(profile: ImageProfile) -> dict[str, dict[str, tuple[Any, str]]]:
    """The value and reason for each parameter that may be ``auto``, by section."""
    image_size = _image_size(profile)
    side = min(image_size)
    smaller_views = side >= 24
    views = [round(VIEW_SCALE * length) for length in image_size] if smaller_views else list(image_size)
    view_reason = (
        f"views {VIEW_SCALE:.0%} of the side from 24 pixels up: more steps per minute, and random resized "
        "crops enlarge objects about as much"
        if smaller_views
        else "images under 24 pixels are cropped at their own size"
    )
    colour = "their colour varies" if profile.colour else "they are grey (no sampled image has colour)"
    blur_reason = f"{side}-pixel images: " + (
        "blur would erase their detail" if side <= 32 else "blur as SimCLR at larger sizes"
    )
    batch = _batch_size(profile.train)
    return {
        "ingestion": {
            "channels": (3 if profile.colour else 1, f"{profile.sampled} sampled images: {colour}"),
            "image_size": (list(image_size), _size_reason(profile, image_size)),
        },
        "augmentation": {
            "output_size": (views, view_reason),
            "saturation": (0.4 if profile.colour else 0.0, colour),
            "grayscale_p": (0.2 if profile.colour else 0.0, colour),
            "blur_p": (0.0 if side <= 32 else 0.5, blur_reason),
        },
        "pretraining": {
            "batch_size": (batch, f"{profile.train} training images: at least 4 batches per epoch, at most 256"),
        },
        "evaluation": _evaluation_choices(profile),
    }


def _image_size(profile: ImageProfile) -> tuple[int, int]:
    """The median native size, its short side reduced to at most ``LARGEST_SIDE``, aspect kept within 2:1."""
    short = min(profile.height, profile.width)
    scale = min(1.0, LARGEST_SIDE / short)
    height, width = max(1, round(profile.height * scale)), max(1, round(profile.width * scale))
    short_side = min(height, width)
    return min(height, 2 * short_side), min(width, 2 * short_side)


def _size_reason(profile: ImageProfile, size: tuple[int, int]) -> str:
    native = f"median native size {profile.height}×{profile.width}"
    if size == (profile.height, profile.width):
        return f"{native}, kept"
    return (
        f"{native}, reduced to a {LARGEST_SIDE}-pixel short side: the cost of a step grows with the "
        "pixels, and on CPUs more steps beat more pixels at these budgets"
    )


def _batch_size(train: int) -> int:
    return int(min(256, max(2, 2 ** math.floor(math.log2(max(2, train // 4))))))


def _evaluation_choices(profile: ImageProfile) -> dict[str, tuple[Any, str]]:
    if not profile.classes:
        return {"n_clusters": (10, "unlabelled: 10 clusters")}
    labelled = len(profile.train_labels)
    ks = sorted({min(k, labelled) for k in (20, 200)})
    fractions = [f for f in (0.01, 0.1, 0.5) if _gives_every_class_an_example(profile.train_labels, f)][:2] or [0.5]
    return {
        "knn_k": (ks, f"k = 20 and 200, at most the {labelled} labelled training images"),
        "label_fractions": (
            fractions,
            (
                f"the smallest of 1 %, 10 %, 50 % that leave each of {profile.classes} classes an example "
                f"(smallest class: {profile.smallest_class} training images)"
            ),
        ),
        "n_clusters": (profile.classes, f"{profile.classes} classes"),
    }


def _gives_every_class_an_example(labels: np.ndarray, fraction: float) -> bool:
    try:
        label_fraction(labels, fraction)
    except ParameterError:
        return False
    return True


def resolve_auto(values: dict[str, dict]) -> dict[str, dict]:
    """``values`` (section → parameters) with every ``auto`` replaced by its choice; the choices logged."""
    if not has_auto(values):
        return values
    profile = profile_images(values.get("ingestion") or {})
    logger.info(
        "Choosing the 'auto' parameters from the images: %d images (%d for training, %d classes), median %d×%d, %s",
        profile.images,
        profile.train,
        profile.classes,
        profile.height,
        profile.width,
        "colour" if profile.colour else "grey",
    )
    choices = choose_parameters(profile)
    resolved = {section: dict(section_values or {}) for section, section_values in values.items()}
    for section, key in _autos(values):
        if key not in choices[section]:  # the label-based choices of an unlabelled folder
            del resolved[section][key]
            continue
        chosen, reason = choices[section][key]
        resolved[section][key] = chosen
        logger.info("%s.%s = %s: %s", section, key, chosen, reason)
    return resolved
