"""Ingestion of each dataset kind through the node, on files the tests make."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from selfsup.pipelines.ingestion.nodes import ingest
from tests.test_readers import write_idx


def write_fake_idx_dataset(folder, n_train=30, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    names = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        names[f"{split}_images"] = write_idx(
            folder / f"{split}-images", rng.integers(0, 256, (n, 6, 5), dtype=np.uint8), gz=True
        )
        names[f"{split}_labels"] = write_idx(folder / f"{split}-labels", rng.integers(0, 3, n, dtype=np.uint8))
    return names


def test_idx_keeps_the_files_own_split_and_order(tmp_path):
    write_fake_idx_dataset(tmp_path)
    files = {
        "train_images": "train-images",
        "train_labels": "train-labels",
        "test_images": "t10k-images",
        "test_labels": "t10k-labels",
    }
    images, index, summary = ingest({"dataset": "idx", "path": str(tmp_path), "idx_files": files})
    assert images.shape == (40, 1, 6, 5)
    assert index["split"].tolist() == ["train"] * 30 + ["test"] * 10
    assert index["id"].iloc[0] == "train-00000" and index["id"].iloc[30] == "test-00000"
    assert summary["train"] == 30 and summary["test"] == 10


def test_idx_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        ingest({"dataset": "idx", "path": str(tmp_path)})


def make_folder(root, labelled: bool, per_class=8, classes=("cat", "dog")):
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA", "P", "I;16", "1"]
    count = 0
    for name in classes:
        target = root / name if labelled else root
        target.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
            mode = modes[count % len(modes)]
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            image = Image.fromarray(pixels, "RGB")
            image = image.convert("L").convert(mode) if mode in ("I;16", "1") else image.convert(mode)
            image.save(target / f"{name}-{i}.png")
            count += 1
    return root


@pytest.mark.parametrize("labelled", [True, False])
def test_folder_of_mixed_sizes_and_modes(tmp_path, labelled):
    make_folder(tmp_path / "images", labelled)
    (tmp_path / "images" / "broken.png" if not labelled else tmp_path / "images" / "cat" / "broken.png").write_bytes(
        b"nope"
    )
    params = {
        "dataset": "folder",
        "path": str(tmp_path / "images"),
        "channels": 3,
        "image_size": [12, 10],
        "on_error": "skip",
        "test_fraction": 0.25,
    }
    images, index, summary = ingest(params)
    assert images.shape == (16, 3, 12, 10) and images.dtype == np.uint8
    assert summary["skipped"] == 1 and "broken.png" in summary["skipped_files"][0]
    assert (index["split"] == "test").sum() == 4
    if labelled:
        assert sorted(index["label"].unique().tolist()) == [0, 1]
        assert index.groupby("split")["label"].nunique().to_dict() == {"test": 2, "train": 2}
    else:
        assert index["label"].isna().all()


def test_array_with_labels_and_many_channels(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "bands.npz"
    np.savez(path, images=rng.random((40, 5, 7, 7)).astype(np.float32), labels=np.repeat([0, 1], 20))
    images, index, summary = ingest({"dataset": "array", "path": str(path)})
    assert images.shape == (40, 5, 7, 7) and images.dtype == np.uint8
    assert summary["classes"] == 2 and (index["split"] == "test").sum() == 8


def test_path_is_required_for_files(tmp_path):
    with pytest.raises(ValueError, match="ingestion.path is required"):
        ingest({"dataset": "folder"})
