"""CIFAR-10 / CIFAR-100 in the official python format, on small archives of that format made per test."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from selfsup.config import IngestionParams
from selfsup.data.cifar import FORMATS
from selfsup.data.sources import load_image_set, outline_image_set
from selfsup.errors import DataError, MissingInputError
from tests.test_image_trees import archive_folder, split_tree

PER_BATCH = 6
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def batch_rows(seed: int, count: int = PER_BATCH) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 3072), dtype=np.uint8)


def official_batches(variant: str = "cifar10", data: dict | None = None) -> dict[str, dict]:
    """The official batches as the python-2 pickles hold them: byte-string keys, list labels."""
    form = FORMATS[variant]
    n_classes = 10 if variant == "cifar10" else 100
    names = CIFAR10_NAMES if variant == "cifar10" else [f"class_{i:02d}" for i in range(n_classes)]
    batches = {}
    for seed, name in enumerate((*form.train_batches, form.test_batch)):
        count = PER_BATCH * (5 if variant == "cifar100" and name == "train" else 1)
        rows = (data or {}).get(name, batch_rows(seed, count))
        batches[name] = {b"data": rows, form.label_key: [(seed + i) % n_classes for i in range(len(rows))]}
    batches[form.meta] = {form.names_key: [name.encode() for name in names]}
    return batches


def write_official(where: Path, variant: str = "cifar10", batches: dict | None = None, as_folder: bool = False) -> Path:
    form = FORMATS[variant]
    batches = batches or official_batches(variant)
    if as_folder:
        folder = where / form.folder
        folder.mkdir(parents=True)
        for name, batch in batches.items():
            (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        return folder
    archive = where / form.archive
    with tarfile.open(archive, "w:gz") as bundle:
        for name, batch in batches.items():
            data = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"{form.folder}/{name}")
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return archive


def cifar_params(path: Path, variant: str = "cifar10", **overrides) -> IngestionParams:
    return IngestionParams(dataset=variant, path=str(path), **overrides)


@pytest.mark.parametrize("where", ["archive", "folder", "parent of archive", "parent of folder"])
def test_official_format_gives_the_official_split_and_names(tmp_path, where):
    written = write_official(tmp_path, as_folder="folder" in where)
    image_set = load_image_set(cifar_params(tmp_path if "parent" in where else written))
    index = image_set.index
    assert image_set.images.shape == (6 * PER_BATCH, 3, 32, 32)
    assert index["split"].value_counts().to_dict() == {"train": 5 * PER_BATCH, "test": PER_BATCH}
    assert (
        list(index["id"][:2]) == ["train-00000", "train-00001"] and index["id"].iloc[-1] == f"test-{PER_BATCH - 1:05d}"
    )
    # Rows are three 32×32 planes, red, green, blue.
    rows = batch_rows(0)
    np.testing.assert_array_equal(image_set.images[0, 0], rows[0, :1024].reshape(32, 32))
    np.testing.assert_array_equal(image_set.images[1, 2], rows[1, 2048:].reshape(32, 32))
    assert list(index["label"][:3]) == [0, 1, 2]
    assert list(index["class_name"][:3]) == ["airplane", "automobile", "bird"]
    outline = outline_image_set(cifar_params(written))
    assert outline.image_size == (32, 32) and outline.n_train == 5 * PER_BATCH
    np.testing.assert_array_equal(outline.train_labels, index["label"][:30].to_numpy(dtype=np.int64))


def test_a_renamed_official_archive_is_recognised(tmp_path):
    renamed = write_official(tmp_path).rename(tmp_path / "my-cifar.tar.gz")
    assert len(load_image_set(cifar_params(renamed)).images) == 6 * PER_BATCH


def test_cifar100_fine_labels(tmp_path):
    image_set = load_image_set(cifar_params(write_official(tmp_path, "cifar100"), "cifar100"))
    assert image_set.index["split"].value_counts().to_dict() == {"train": 5 * PER_BATCH, "test": PER_BATCH}
    assert image_set.index["class_name"].iloc[3] == "class_03"


def test_a_split_image_tree_is_read_as_images(tmp_path):
    archive = archive_folder(split_tree(tmp_path / "tree"), tmp_path / "cifar-jpeg.tar.gz", wrap="cifar10")
    image_set = load_image_set(cifar_params(archive, channels=1, image_size=(4, 4)))
    assert image_set.index["split"].value_counts().to_dict() == {"train": 6, "test": 6}
    assert set(image_set.index["class_name"]) == {"cats", "dogs"}


def test_an_image_tree_without_a_test_split_is_refused(tmp_path):
    root = split_tree(tmp_path / "tree", splits=("train",))
    with pytest.raises(DataError, match="train/ and test/ split folders"):
        load_image_set(cifar_params(root, channels=1, image_size=(4, 4)))


def test_batch_with_the_wrong_shape_names_the_file(tmp_path):
    batches = official_batches(data={"data_batch_3": batch_rows(3)[:, :3000]})
    archive = write_official(tmp_path, batches=batches)
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz: data_batch_3: 'data' must be uint8 \(n, 3072\)"):
        load_image_set(cifar_params(archive))


def test_labels_that_do_not_match_the_images(tmp_path):
    batches = official_batches()
    batches["test_batch"][b"labels"] = batches["test_batch"][b"labels"][:-1]
    with pytest.raises(DataError, match=f"test_batch: {PER_BATCH} images but {PER_BATCH - 1} labels"):
        load_image_set(cifar_params(write_official(tmp_path, batches=batches, as_folder=True)))


def test_missing_batch(tmp_path):
    batches = official_batches()
    del batches["data_batch_5"]
    with pytest.raises(DataError, match="data_batch_5 is missing"):
        load_image_set(cifar_params(write_official(tmp_path, batches=batches)))


def test_truncated_archive(tmp_path):
    archive = write_official(tmp_path)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz: cannot read the archive"):
        load_image_set(cifar_params(archive))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    batches = official_batches()
    batches["data_batch_1"] = {b"data": _Exploit()}
    with pytest.raises(DataError, match="data_batch_1: not a CIFAR batch .*refusing to load"):
        load_image_set(cifar_params(write_official(tmp_path, batches=batches, as_folder=True)))


def test_no_archive_without_download(tmp_path):
    with pytest.raises(MissingInputError, match="cifar-10-python.tar.gz.*ingestion.download: true"):
        load_image_set(cifar_params(tmp_path))


def test_download_without_a_network_says_where_to_put_the_archive(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    def no_network(url, root, filename, md5):
        (Path(root) / filename).write_bytes(b"partial")
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", no_network)
    target = tmp_path / "raw"
    with pytest.raises(MissingInputError, match=rf"Network is unreachable.*put cifar-10-python\.tar\.gz in {target}"):
        load_image_set(cifar_params(target, download=True))
    assert not (target / "cifar-10-python.tar.gz").exists()


def test_download_places_the_archive_and_reads_it(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    made = write_official(tmp_path)
    target = tmp_path / "raw"

    def fake_download(url, root, filename, md5):
        assert url == FORMATS["cifar10"].url and md5 == FORMATS["cifar10"].md5
        made.rename(Path(root) / filename)

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fake_download)
    assert len(load_image_set(cifar_params(target, download=True)).images) == 6 * PER_BATCH
    assert (target / "cifar-10-python.tar.gz").is_file()
