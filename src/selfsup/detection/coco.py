"""A user's COCO-format annotation file and image folder, read into ``BoxedImages``.

The file holds ``images`` (``id``, ``file_name`` relative to the image folder),
``annotations`` (``image_id``, ``category_id``, ``bbox`` as [x, y, width, height] in
pixels) and ``categories`` (``id``, ``name``). ``check_coco`` reads the file and
the images' headers only (no decoding), so a run can refuse a missing image or a box
outside its image before any work; ``read_coco`` then decodes the images, resizes each
to the square detector input (boxes scaled with it) and numbers the categories by id
from 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from selfsup.data.images import DECODE_ERRORS, ImageDecodeError, decode_image
from selfsup.detection.boxed_images import BoxedImages, resized
from selfsup.errors import DataError, MissingInputError


@dataclass(frozen=True)
class CocoImage:
    path: Path
    size: tuple[int, int]  # (width, height), from the file's header
    boxes: np.ndarray  # float32 (n, 4) x0, y0, x1, y1
    category_ids: list[int]


@dataclass(frozen=True)
class CocoSet:
    images: list[CocoImage]
    categories: dict[int, str]  # category id → name, in id order


def _load_json(annotations: Path) -> dict:
    if not annotations.is_file():
        raise MissingInputError(f"detection.coco.annotations={str(annotations)!r}: no such file")
    try:
        spec = json.loads(annotations.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{annotations}: not a JSON file ({error})") from error
    lists = ("images", "annotations", "categories")
    if not isinstance(spec, dict) or not all(isinstance(spec.get(key), list) for key in lists):
        raise DataError(f"{annotations}: a COCO annotation file is an object with the lists {list(lists)}")
    for kind, keys in (("images", {"id", "file_name"}), ("categories", {"id"})):
        incomplete = next((entry for entry in spec[kind] if not keys <= set(entry)), None)
        if incomplete is not None:
            raise DataError(f"{annotations}: every entry of {kind} needs {sorted(keys)}; one is {incomplete}")
    return spec


def _image_size(annotations: Path, path: Path, image_id) -> tuple[int, int]:
    if not path.is_file():
        raise MissingInputError(f"{annotations}: image id {image_id} {path.name!r} is missing: no file {path}")
    try:
        with Image.open(path) as image:
            return image.size
    except DECODE_ERRORS as error:
        raise ImageDecodeError(path, f"{type(error).__name__}: {error}") from error


def _box(annotations: Path, annotation: dict, file_name: str, size: tuple[int, int]) -> np.ndarray:
    """x0, y0, x1, y1 of the annotation's [x, y, w, h] bbox, which must have an area and lie inside its image."""
    bbox = annotation.get("bbox")
    where = f"{annotations}: annotation id {annotation.get('id')} (image {file_name!r})"
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        raise DataError(f"{where}: bbox={bbox!r} is not [x, y, width, height]")
    x, y, w, h = bbox
    width, height = size
    if w <= 0 or h <= 0:
        raise DataError(f"{where}: bbox={bbox} has no area (width and height must be positive)")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise DataError(f"{where}: bbox={bbox} lies outside the {width}×{height} image")
    return np.array([x, y, x + w, y + h], dtype=np.float32)


def check_coco(annotations: str | Path, image_folder: str | Path) -> CocoSet:
    """The annotation file's images (their headers read) and boxes, or one ``DataError`` naming the file and value."""
    annotations, image_folder = Path(annotations), Path(image_folder)
    if not image_folder.is_dir():
        raise MissingInputError(f"detection.coco.images={str(image_folder)!r}: no such folder")
    spec = _load_json(annotations)
    categories = {int(category["id"]): str(category.get("name", category["id"])) for category in spec["categories"]}
    entries = {entry["id"]: entry for entry in spec["images"]}
    sizes = {
        image_id: _image_size(annotations, image_folder / entry["file_name"], image_id)
        for image_id, entry in entries.items()
    }
    boxes: dict = {image_id: [] for image_id in entries}
    category_ids: dict = {image_id: [] for image_id in entries}
    for annotation in spec["annotations"]:
        image_id = annotation.get("image_id")
        if image_id not in entries:
            raise DataError(
                f"{annotations}: annotation id {annotation.get('id')} names image_id={image_id!r}, "
                "which is not among the file's images"
            )
        if annotation.get("category_id") not in categories:
            raise DataError(
                f"{annotations}: annotation id {annotation.get('id')} has category_id="
                f"{annotation.get('category_id')!r}; the categories are {sorted(categories)}"
            )
        boxes[image_id].append(_box(annotations, annotation, entries[image_id]["file_name"], sizes[image_id]))
        category_ids[image_id].append(annotation["category_id"])
    images = [
        CocoImage(
            image_folder / entries[image_id]["file_name"],
            sizes[image_id],
            np.array(boxes[image_id], dtype=np.float32).reshape(-1, 4),
            category_ids[image_id],
        )
        for image_id in entries
    ]
    return CocoSet(images, dict(sorted(categories.items())))


def read_coco(annotations: str | Path, image_folder: str | Path, size: int, channels: int) -> BoxedImages:
    """Every image of the annotation file, decoded to ``channels`` and resized to ``size``×``size``
    (its boxes scaled with it); categories numbered 0, 1, ... in id order."""
    coco = check_coco(annotations, image_folder)
    label_of = {category_id: label for label, category_id in enumerate(coco.categories)}
    images, boxes, labels = [], [], []
    for image in coco.images:
        width, height = image.size
        pixels = resized(decode_image(image.path, channels, (height, width)), (size, size))
        images.append(np.rint(pixels * 255).astype(np.uint8))
        boxes.append(image.boxes * np.array([size / width, size / height] * 2, dtype=np.float32))
        labels.append(np.array([label_of[c] for c in image.category_ids], dtype=np.int64))
    return BoxedImages(np.stack(images), boxes, labels, tuple(coco.categories.values()))
