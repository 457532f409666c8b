"""CIFAR-10 and CIFAR-100 in their official python format (Krizhevsky, 2009).

The archive (``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``) holds pickled
batches: dicts with ``data``, uint8 (n, 3072) rows of 32×32 RGB planes, and the labels.
It is read in place, or from its extracted folder. The pickles are loaded with an
unpickler that builds nothing but NumPy arrays, lists, dicts and strings, so a crafted
file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from selfsup.data.trees import ARCHIVE_ERRORS
from selfsup.errors import DataError, MissingInputError

_ROW_BYTES = 3 * 32 * 32


@dataclass(frozen=True)
class CifarFormat:
    archive: str  # the official archive's file name
    folder: str  # the folder it extracts to
    url: str
    md5: str
    train_batches: tuple[str, ...]
    test_batch: str
    meta: str
    label_key: bytes
    names_key: bytes
    n_train: int = 50_000


FORMATS = {
    "cifar10": CifarFormat(
        "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        "batches.meta",
        b"labels",
        b"label_names",
    ),
    "cifar100": CifarFormat(
        "cifar-100-python.tar.gz",
        "cifar-100-python",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        ("train",),
        "test",
        "meta",
        b"fine_labels",
        b"fine_label_names",
    ),
}


@dataclass(frozen=True)
class CifarSet:
    images: np.ndarray  # uint8 (N, 3, 32, 32), train then test
    labels: np.ndarray  # int64 (N,)
    splits: list[str]  # 'train' / 'test' per image
    class_names: list[str]
    source: str


def find_official(path: Path, variant: str) -> Path | None:
    """The official archive or extracted folder at or directly under ``path``, if there is one."""
    form = FORMATS[variant]
    if path.is_file():
        return path if path.name == form.archive or _first_folder(path) == form.folder else None
    if (path / form.meta).is_file():
        return path
    return next((candidate for candidate in (path / form.archive, path / form.folder) if candidate.exists()), None)


def _first_folder(archive: Path) -> str | None:
    """The folder of a tar archive's first file (the official archives keep all in one), or None."""
    try:
        with tarfile.open(archive, "r|*") as members:
            first = next((member for member in members if member.isfile()), None)
    except ARCHIVE_ERRORS:
        return None  # not a tar: whoever reads it next says what it is
    return None if first is None else Path(first.name).parent.name


def download_official(folder: Path, variant: str) -> Path:
    """Download the official archive into ``folder`` (checked by MD5); one error when it cannot."""
    from torchvision.datasets.utils import download_url  # imported here: torchvision loads slowly

    form = FORMATS[variant]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        download_url(form.url, str(folder), form.archive, form.md5)
    except (OSError, RuntimeError) as error:  # no network, refused, or a corrupt download
        (folder / form.archive).unlink(missing_ok=True)
        raise MissingInputError(
            f"could not download {form.url} ({type(error).__name__}: {error}); put {form.archive} "
            f"in {folder} (or set ingestion.path to it) and run again"
        ) from None
    return folder / form.archive


def read_official(path: Path, variant: str) -> CifarSet:
    """Read the official archive, or its extracted folder, at ``path``: the official split and class names."""
    form = FORMATS[variant]
    batches = _read_archive(path, form) if path.is_file() else _read_folder(path, form)
    parts = [_batch_rows(batches, name, form, path) for name in (*form.train_batches, form.test_batch)]
    names = _class_names(batches, form, path)
    images = np.concatenate([rows for rows, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    if labels.min() < 0 or labels.max() >= len(names):
        raise DataError(f"{path}: labels run {labels.min()}..{labels.max()} but {form.meta} names {len(names)} classes")
    n_test = len(parts[-1][1])
    splits = ["train"] * (len(labels) - n_test) + ["test"] * n_test
    return CifarSet(images, labels, splits, names, path.name)


def _read_archive(path: Path, form: CifarFormat) -> dict[str, dict]:
    wanted = {*form.train_batches, form.test_batch, form.meta}
    batches = {}
    try:
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                name = Path(member.name).name
                if member.isfile() and name in wanted:
                    batches[name] = _unpickle(archive.extractfile(member).read(), f"{path}:{member.name}")
    except ARCHIVE_ERRORS as error:
        raise DataError(f"{path}: cannot read the archive ({type(error).__name__}: {error})") from error
    return batches


def _read_folder(path: Path, form: CifarFormat) -> dict[str, dict]:
    return {
        file.name: _unpickle(file.read_bytes(), str(file))
        for name in (*form.train_batches, form.test_batch, form.meta)
        if (file := path / name).is_file()
    }


def _batch(batches: dict[str, dict], name: str, path: Path) -> dict:
    if name not in batches:
        raise DataError(f"{path}: {name} is missing; is it the complete official archive?")
    return batches[name]


def _batch_rows(batches: dict[str, dict], name: str, form: CifarFormat, path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _batch(batches, name, path)
    data, labels = batch.get(b"data"), batch.get(form.label_key)
    where = f"{path}: {name}"
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW_BYTES:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{where}: 'data' must be uint8 (n, {_ROW_BYTES}) rows of 32×32 RGB, got {got}")
    if labels is None or len(labels) != len(data):
        count = "none" if labels is None else len(labels)
        raise DataError(f"{where}: {len(data)} images but {count} {form.label_key.decode()}")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _class_names(batches: dict[str, dict], form: CifarFormat, path: Path) -> list[str]:
    names = _batch(batches, form.meta, path).get(form.names_key)
    if not isinstance(names, list) or not names:
        raise DataError(f"{path}: {form.meta} has no {form.names_key.decode()} list")
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]


class _ArraysOnly(pickle.Unpickler):
    """Builds NumPy arrays and plain containers only; anything else is refused.

    ``_codecs.encode`` is how protocol-2 pickles written by Python 3 store bytes.
    """

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict:
    try:
        loaded = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as error:
        raise DataError(f"{where}: not a CIFAR batch ({type(error).__name__}: {error})") from error
    if not isinstance(loaded, dict):
        raise DataError(f"{where}: not a CIFAR batch (a {type(loaded).__name__}, expected a dict)")
    return {key.encode() if isinstance(key, str) else key: value for key, value in loaded.items()}
