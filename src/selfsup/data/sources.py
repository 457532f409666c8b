"""Dataset readers. Each returns an ``ImageSet``: uint8 images and their index."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from selfsup.data.readers import read_array_file, read_idx_pair, read_image_folder


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


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """'train'/'test' per sample, stratified by label, reproducible by seed."""
    positions = np.arange(len(labels))
    _, test = train_test_split(
        positions, test_size=test_fraction, stratify=labels, random_state=seed
    )
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
        images_file = folder / params.idx_files[f"{split}_images"]
        labels_file = folder / params.idx_files[f"{split}_labels"]
        for file in (images_file, labels_file):
            if not file.is_file():
                raise FileNotFoundError(
                    f"{file} does not exist; set ingestion.path to the folder holding the IDX files "
                    "or ingestion.idx_files to their names"
                )
        images, labels = read_idx_pair(images_file, labels_file)
        ids = [f"{split}-{i:05d}" for i in range(len(images))]
        parts.append((images, make_index(ids, [split] * len(images), labels, images_file.name)))
    images = np.concatenate([part[0] for part in parts])
    index = pd.concat([part[1] for part in parts], ignore_index=True)
    return ImageSet(images, index)


def array(params) -> ImageSet:
    """A ``.npy`` / ``.npz`` array (N, H, W) or (N, C, H, W), labels optional."""
    path = _required_path(params)
    images, labels = read_array_file(path)
    ids = [f"{path.stem}-{i:06d}" for i in range(len(images))]
    return ImageSet(images, _split_index(ids, labels, str(path.name), params))


def folder(params) -> ImageSet:
    """An image folder; first-level subfolders are classes, a flat folder is unlabeled."""
    path = _required_path(params)
    read = read_image_folder(
        path, channels=params.channels, size=tuple(params.image_size),
        workers=params.workers, on_error=params.on_error,
    )
    return ImageSet(read.images, _split_index(read.paths, read.labels, str(path), params), skipped=read.skipped)


def _required_path(params) -> Path:
    if not params.path:
        raise ValueError(f"ingestion.path is required for ingestion.dataset={params.dataset!r}")
    path = Path(params.path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"ingestion.path={params.path!r} does not exist")
    return path


def _split_index(ids, labels, source: str, params) -> pd.DataFrame:
    """Held-out split: stratified by label when labels exist, else uniformly at random."""
    if labels is None:
        order = np.random.default_rng(params.seed).permutation(len(ids))
        splits = np.full(len(ids), "train", dtype=object)
        splits[order[: int(round(params.test_fraction * len(ids)))]] = "test"
        labels = [None] * len(ids)
    else:
        splits = stratified_split(labels, params.test_fraction, params.seed)
    return make_index(ids, splits, labels, source)


READERS = {"digits": digits, "idx": idx, "array": array, "folder": folder}


def load_image_set(params) -> ImageSet:
    """Read the dataset that ``params`` (``IngestionParams``) names."""
    return READERS[params.dataset](params)
