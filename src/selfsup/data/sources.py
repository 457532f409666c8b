"""Dataset readers. Each returns an ``ImageSet``: uint8 images and their index."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from selfsup.data.readers import (
    folder_layout,
    read_array_file,
    read_array_outline,
    read_idx,
    read_idx_pair,
    read_idx_shape,
    read_image_folder,
)
from selfsup.data.store import Allocate, allocate_in_memory
from selfsup.errors import DataError, MissingInputError


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # uint8 (N, C, H, W)
    index: pd.DataFrame  # id, split, label (nullable), source
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) left out

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}"
            )
        if len(self.index) != len(self.images):
            raise ValueError(
                f"index has {len(self.index)} rows but there are {len(self.images)} images"
            )


def make_index(ids, splits, labels, source: str) -> pd.DataFrame:
    """The ``image_index`` contract: id, split, label (nullable Int64), source."""
    return pd.DataFrame(
        {
            "id": pd.Series(ids, dtype="string"),
            "split": pd.Series(splits, dtype="string"),
            "label": pd.Series(labels, dtype="Int64"),
            "source": pd.Series([source] * len(ids), dtype="string"),
        }
    )


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int, source: str = "the dataset") -> np.ndarray:
    """'train'/'test' per sample, stratified by label, reproducible by seed."""
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        raise DataError(
            f"{source}: class {classes[counts.argmin()]} has a single image; a stratified train/test "
            "split needs at least 2 per class (add images or remove the class)"
        )
    positions = np.arange(len(labels))
    try:
        _, test = train_test_split(positions, test_size=test_fraction, stratify=labels, random_state=seed)
    except ValueError as error:  # scikit-learn: the test or train part is smaller than the class count
        raise DataError(
            f"{source}: ingestion.test_fraction={test_fraction} cannot split {len(labels)} images of "
            f"{len(classes)} classes with every class on both sides ({error})"
        ) from None
    splits = np.full(len(labels), "train", dtype=object)
    splits[test] = "test"
    return splits


def digits(params) -> ImageSet:
    """scikit-learn's bundled 8×8 digits (1,797 images, 10 classes), no download."""
    bunch = load_digits()
    # Pixel values are 0..16; spread them over the uint8 range.
    pixels = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    ids = [f"digits-{i:05d}" for i in range(len(pixels))]
    splits = stratified_split(labels, params.test_fraction, params.seed)
    return ImageSet(pixels[:, None, :, :], make_index(ids, splits, labels, "sklearn.digits"))


def idx(params) -> ImageSet:
    """MNIST-format IDX files in ``params.path``; keeps the files' own train/test split."""
    folder = _required_path(params)
    parts = []
    for split in ("train", "test"):
        images_file = _idx_file(folder, params, f"{split}_images")
        labels_file = _idx_file(folder, params, f"{split}_labels")
        images, labels = read_idx_pair(images_file, labels_file)
        ids = [f"{split}-{i:05d}" for i in range(len(images))]
        parts.append((images, make_index(ids, [split] * len(images), labels, images_file.name)))
    images = np.concatenate([part[0] for part in parts])
    index = pd.concat([part[1] for part in parts], ignore_index=True)
    return ImageSet(images, index)


def _idx_file(folder: Path, params, role: str) -> Path:
    file = folder / params.idx_files[role]
    if not file.is_file():
        raise MissingInputError(
            f"{file} does not exist; set ingestion.path to the folder holding the IDX files "
            "or ingestion.idx_files to their names"
        )
    return file


def array(params, allocate: Allocate = allocate_in_memory) -> ImageSet:
    """A ``.npy`` / ``.npz`` array (N, H, W) or (N, C, H, W), labels optional."""
    path = _required_path(params)
    images, labels = read_array_file(path, allocate=allocate)
    ids = [f"{path.stem}-{i:06d}" for i in range(len(images))]
    return ImageSet(images, _split_index(ids, labels, str(path.name), params))


def folder(params, allocate: Allocate = allocate_in_memory) -> ImageSet:
    """An image folder; first-level subfolders are classes, a flat folder is unlabeled."""
    path = _required_path(params)
    read = read_image_folder(
        path, channels=params.channels, size=tuple(params.image_size),
        workers=params.workers, on_error=params.on_error, allocate=allocate,
    )
    return ImageSet(read.images, _split_index(read.paths, read.labels, str(path), params), skipped=read.skipped)


def _required_path(params) -> Path:
    if not params.path:
        raise DataError(f"ingestion.path is required for ingestion.dataset={params.dataset!r}")
    path = Path(params.path).expanduser()
    if not path.exists():
        raise MissingInputError(f"ingestion.path={params.path!r} does not exist")
    return path


def _split_index(ids, labels, source: str, params) -> pd.DataFrame:
    """Held-out split: stratified by label when labels exist, else uniformly at random."""
    if len(ids) < 2:
        raise DataError(f"{source}: {len(ids)} image; at least 2 are needed, one to train on and one to test")
    if labels is None:
        order = np.random.default_rng(params.seed).permutation(len(ids))
        splits = np.full(len(ids), "train", dtype=object)
        n_test = min(max(1, round(params.test_fraction * len(ids))), len(ids) - 1)
        splits[order[:n_test]] = "test"
        labels = [None] * len(ids)
    else:
        splits = stratified_split(labels, params.test_fraction, params.seed, source)
    return make_index(ids, splits, labels, source)


READERS = {"digits": digits, "idx": idx, "array": array, "folder": folder}
# Readers that decode into an allocated store; digits and IDX files are read whole (at most ~100 MB).
STREAMING_READERS = {"array", "folder"}


def load_image_set(params, allocate: Allocate = allocate_in_memory) -> ImageSet:
    """Read the dataset that ``params`` (``IngestionParams``) names, into ``allocate(shape)`` where it streams."""
    if params.dataset in STREAMING_READERS:
        return READERS[params.dataset](params, allocate)
    return READERS[params.dataset](params)


@dataclass(frozen=True)
class DatasetOutline:
    """What a run can know about its dataset before decoding it: enough to check parameters."""

    image_size: tuple[int, int]
    n_train: int
    train_labels: np.ndarray | None  # None for an unlabeled set


def outline_image_set(params) -> DatasetOutline:
    """The outline of the dataset ``params`` names, from headers, shapes and file lists only.

    It is exact for digits, IDX and arrays; for a folder, images that ``on_error: skip``
    drops later make the training set smaller than outlined.
    """
    if params.dataset == "digits":
        labels = load_digits().target.astype(np.int64)
        return _split_outline((8, 8), labels, len(labels), "sklearn.digits", params)
    path = _required_path(params)
    if params.dataset == "idx":
        shape = read_idx_shape(_idx_file(path, params, "train_images"))
        labels = read_idx(_idx_file(path, params, "train_labels")).astype(np.int64)
        return DatasetOutline(tuple(shape[1:3]), int(shape[0]), labels)
    if params.dataset == "array":
        shape, labels = read_array_outline(path)
        return _split_outline(tuple(shape[2:]), labels, shape[0], path.name, params)
    _, paths, _, labels = folder_layout(path)
    return _split_outline(tuple(params.image_size), labels, len(paths), str(path), params)


def _split_outline(image_size, labels, count: int, source: str, params) -> DatasetOutline:
    splits = _split_index([""] * count, labels, source, params)["split"].to_numpy() == "train"
    train_labels = None if labels is None else np.asarray(labels)[splits]
    return DatasetOutline(tuple(int(side) for side in image_size), int(splits.sum()), train_labels)
