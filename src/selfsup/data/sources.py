"""Dataset readers. Each returns an ``ImageSet``: uint8 images and their index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # uint8 (N, C, H, W)
    index: pd.DataFrame  # id, split, label (nullable), source

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


def digits(test_fraction: float = 0.2, seed: int = 0) -> ImageSet:
    """scikit-learn's bundled 8×8 digits (1,797 images, 10 classes), no download."""
    bunch = load_digits()
    # Pixel values are 0..16; spread them over the uint8 range.
    pixels = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    images = pixels[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    ids = [f"digits-{i:05d}" for i in range(len(images))]
    splits = stratified_split(labels, test_fraction, seed)
    return ImageSet(images, make_index(ids, splits, labels, "sklearn.digits"))


READERS = {"digits": digits}


def load_image_set(dataset: str, test_fraction: float = 0.2, seed: int = 0) -> ImageSet:
    if dataset not in READERS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {sorted(READERS)}")
    return READERS[dataset](test_fraction=test_fraction, seed=seed)
