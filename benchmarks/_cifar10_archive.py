"""A minimal reader of the CIFAR-10 JPEG archive, private to the benchmarks.

The archive (``../shared/datasets/cifar10-jpeg.tar.gz``) holds
``cifar10/{train,test}/<class>/NNNN.jpg``, 32×32 RGB. It is read as a stream
and decoded in memory with Pillow: nothing is extracted to disk. Labels are the
class folders' positions in sorted order.
"""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

SPLITS = ("train", "test")
IMAGE_SIZE = (32, 32)


@dataclass(frozen=True)
class LabelledImages:
    images: np.ndarray  # uint8 (N, 3, 32, 32)
    labels: np.ndarray  # int64 (N,)


def read_cifar10_archive(
    path: str | Path, per_class: dict[str, int] | None = None
) -> tuple[dict[str, LabelledImages], list[str]]:
    """Both splits of the archive at ``path`` and the class names.

    ``per_class`` caps how many images of each class a split keeps (the first
    ones in archive order); the files beyond the cap are skipped undecoded.
    """
    kept: dict[str, list[tuple[str, str, np.ndarray]]] = {split: [] for split in SPLITS}
    counts: Counter[tuple[str, str]] = Counter()
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) != 4 or parts[1] not in SPLITS or not parts[3].endswith(".jpg"):
                continue
            _, split, name, _ = parts
            if per_class is not None and counts[split, name] >= per_class[split]:
                continue
            counts[split, name] += 1
            kept[split].append((member.name, name, _decode(archive.extractfile(member).read(), member.name)))
    classes = sorted({name for _, name, _ in kept["train"]})
    return {split: _labelled(rows, classes, split, path) for split, rows in kept.items()}, classes


def _decode(data: bytes, name: str) -> np.ndarray:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if image.size != IMAGE_SIZE:
        raise ValueError(f"{name} is {image.size[0]}×{image.size[1]}, CIFAR-10 images are 32×32")
    return np.asarray(image).transpose(2, 0, 1)


def _labelled(rows: list[tuple[str, str, np.ndarray]], classes: list[str], split: str, path) -> LabelledImages:
    if not rows:
        raise ValueError(f"{path} holds no cifar10/{split}/<class>/*.jpg images")
    unknown = {name for _, name, _ in rows} - set(classes)
    if unknown:
        raise ValueError(f"{path}: classes {sorted(unknown)} of the {split} split are not in the train split")
    rows.sort(key=lambda row: row[0])
    code = {name: position for position, name in enumerate(classes)}
    images = np.stack([image for _, _, image in rows])
    labels = np.array([code[name] for _, name, _ in rows], dtype=np.int64)
    return LabelledImages(images, labels)
