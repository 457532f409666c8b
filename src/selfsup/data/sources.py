"""Dataset readers. Each returns an ``ImageSet``: uint8 images and their index."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from selfsup.data import cifar
from selfsup.data.arrays import read_array_file, read_array_outline
from selfsup.data.folders import FolderImages, folder_layout, read_image_folder
from selfsup.data.idx import read_idx, read_idx_pair, read_idx_shape
from selfsup.data.store import Allocate, allocate_in_memory
from selfsup.data.trees import FolderTree, is_archive
from selfsup.errors import DataError, MissingInputError


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # uint8 (N, C, H, W)
    index: pd.DataFrame  # id, split, label (nullable), class_name (nullable), source
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) left out

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}")
        if len(self.index) != len(self.images):
            raise ValueError(f"index has {len(self.index)} rows but there are {len(self.images)} images")


def make_index(ids, splits, labels, source: str, class_names: list[str] | None = None) -> pd.DataFrame:
    """The ``image_index`` contract: id, split, label (nullable Int64), class_name (nullable), source.

    ``class_names[label]`` names each labelled image; without ``class_names`` the column is null.
    """
    label_column = pd.Series(labels, dtype="Int64")
    names = pd.Series(pd.NA, index=label_column.index, dtype="string")
    if class_names:
        labelled = label_column.notna()
        names[labelled] = np.asarray(class_names, dtype=object)[label_column[labelled].to_numpy(dtype=np.int64)]
    return pd.DataFrame(
        {
            "id": pd.Series(ids, dtype="string"),
            "split": pd.Series(splits, dtype="string"),
            "label": label_column,
            "class_name": names,
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
    names = [str(digit) for digit in bunch.target_names]
    return ImageSet(pixels[:, None, :, :], make_index(ids, splits, labels, "sklearn.digits", names))


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
    return ImageSet(images, split_index(ids, labels, str(path.name), params))


def folder(params, allocate: Allocate = allocate_in_memory) -> ImageSet:
    """An image folder or archive in any layout of ``selfsup.data.layout``; split folders are kept."""
    path = _required_path(params)
    return _folder_set(path, _read_folder(path, params, allocate), params)


def _read_folder(path: Path, params, allocate: Allocate) -> FolderImages:
    return read_image_folder(
        path,
        channels=params.channels,
        size=tuple(params.image_size),
        workers=params.workers,
        on_error=params.on_error,
        allocate=allocate,
    )


def _folder_set(path: Path, read: FolderImages, params) -> ImageSet:
    return ImageSet(read.images, _folder_index(read, str(path), params), skipped=read.skipped)


def _folder_index(read: FolderImages, source: str, params) -> pd.DataFrame:
    """The given split when the tree has a held-out split folder, else one made here."""
    if read.splits is not None and (read.splits == "test").any():
        return make_index(read.paths, read.splits, read.labels, source, read.class_names)
    index = split_index(read.paths, read.labels, source, params)
    return make_index(index["id"], index["split"], read.labels, source, read.class_names)


def cifar_set(params, allocate: Allocate = allocate_in_memory) -> ImageSet:
    """CIFAR-10 / CIFAR-100 from the official archive, its extracted folder, or a split image tree.

    ``ingestion.path`` is the archive, the folder, or a folder holding either; with
    ``ingestion.download`` and none of them there, the archive is downloaded into it first.
    Any other folder or archive of images (e.g. a JPEG copy) is read as an image tree,
    and must have its own train and test split folders.
    """
    path = _given_path(params)
    official = cifar.find_official(path, params.dataset)
    if official is None and _holds_images(path):
        read = _read_folder(path, params, allocate)
        if read.splits is None or not (read.splits == "test").any():
            raise DataError(
                f"{path}: neither the official {cifar.FORMATS[params.dataset].archive} nor a tree with "
                "train/ and test/ split folders"
            )
        return _folder_set(path, read, params)
    if official is None:
        official = _download_or_fail(path, params)
    read = cifar.read_official(official, params.dataset)
    counters = {"train": 0, "test": 0}
    ids = []
    for split in read.splits:
        ids.append(f"{split}-{counters[split]:05d}")
        counters[split] += 1
    return ImageSet(read.images, make_index(ids, read.splits, read.labels, read.source, read.class_names))


def _holds_images(path: Path) -> bool:
    if path.is_file():
        return is_archive(path)
    return path.is_dir() and bool(FolderTree(path).paths)


def _download_or_fail(path: Path, params) -> Path:
    form = cifar.FORMATS[params.dataset]
    if not params.download:
        raise MissingInputError(
            f"ingestion.path={params.path!r} holds neither {form.archive} nor {form.folder}/; put the "
            "official archive there, point ingestion.path at it, or set ingestion.download: true"
        )
    return cifar.download_official(path.parent if path.name == form.archive else path, params.dataset)


def _given_path(params) -> Path:
    if not params.path:
        raise DataError(f"ingestion.path is required for ingestion.dataset={params.dataset!r}")
    return Path(params.path).expanduser()


def _required_path(params) -> Path:
    path = _given_path(params)
    if not path.exists():
        raise MissingInputError(f"ingestion.path={params.path!r} does not exist")
    return path


def split_index(ids, labels, source: str, params) -> pd.DataFrame:
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


READERS = {"digits": digits, "idx": idx, "array": array, "folder": folder, "cifar10": cifar_set, "cifar100": cifar_set}
# Readers that decode into an allocated store; digits, IDX files and the official CIFAR
# batches are read whole (at most ~200 MB).
STREAMING_READERS = {"array", "folder", "cifar10", "cifar100"}


def load_image_set(params, allocate: Allocate = allocate_in_memory) -> ImageSet:
    """Read the dataset that ``params`` (``IngestionParams``) names, into ``allocate(shape)`` where it streams."""
    if params.dataset in STREAMING_READERS:
        return READERS[params.dataset](params, allocate)
    return READERS[params.dataset](params)


@dataclass(frozen=True)
class DatasetOutline:
    """What a run can know about its dataset before decoding it: enough to check parameters."""

    image_size: tuple[int, int] | None  # None for texts (selfsup.text.readers.outline_text_set)
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
    if params.dataset in cifar.FORMATS:
        return _cifar_outline(params)
    path = _required_path(params)
    if params.dataset == "idx":
        shape = read_idx_shape(_idx_file(path, params, "train_images"))
        labels = read_idx(_idx_file(path, params, "train_labels")).astype(np.int64)
        return DatasetOutline(tuple(shape[1:3]), int(shape[0]), labels)
    if params.dataset == "array":
        shape, labels = read_array_outline(path)
        return _split_outline(tuple(shape[2:]), labels, shape[0], path.name, params)
    return _folder_outline(path, params)


def _folder_outline(path: Path, params) -> DatasetOutline:
    paths, layout = folder_layout(path)
    if not layout.has_held_out:
        return _split_outline(tuple(params.image_size), layout.labels, len(paths), str(path), params)
    train = layout.splits == "train"
    labels = None if layout.labels is None else layout.labels[train]
    return DatasetOutline(tuple(params.image_size), int(train.sum()), labels)


def _cifar_outline(params) -> DatasetOutline:
    """Read from the official batches (a second or two); before a download, only the official size."""
    path = _given_path(params)
    official = cifar.find_official(path, params.dataset)
    if official is None and _holds_images(path):
        return _folder_outline(path, params)
    if official is None:
        return DatasetOutline((32, 32), cifar.FORMATS[params.dataset].n_train, None)
    read = cifar.read_official(official, params.dataset)
    train = np.asarray(read.splits) == "train"
    return DatasetOutline((32, 32), int(train.sum()), read.labels[train])


def _split_outline(image_size, labels, count: int, source: str, params) -> DatasetOutline:
    splits = split_index([""] * count, labels, source, params)["split"].to_numpy() == "train"
    train_labels = None if labels is None else np.asarray(labels)[splits]
    return DatasetOutline(tuple(int(side) for side in image_size), int(splits.sum()), train_labels)
