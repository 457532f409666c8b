"""The image store built in a memory-mapped scratch file and moved into place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfsup.data.arrays import read_array_file
from selfsup.data.folders import read_image_folder
from selfsup.data.store import SCRATCH_PREFIX, ScratchStore, persist_store
from selfsup.datasets import NpyDataset
from selfsup.pipelines.ingestion.nodes import ingest
from tests.test_readers import corrupt_png, save_image


def scratch_files(folder):
    return list(folder.glob(f"{SCRATCH_PREFIX}*"))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.bool_])
def test_array_decoded_into_scratch_equals_the_in_memory_read(tmp_path, dtype):
    values = np.random.default_rng(0).random((50, 3, 6, 5))
    images = (
        (values * 255).astype(np.uint8)
        if dtype == np.uint8
        else (values > 0.5 if dtype == np.bool_ else values.astype(np.float32))
    )
    np.save(tmp_path / "images.npy", images)
    in_memory, _ = read_array_file(tmp_path / "images.npy")
    scratched, _ = read_array_file(tmp_path / "images.npy", allocate=ScratchStore(tmp_path / "scratch"))
    assert isinstance(scratched, np.memmap)
    np.testing.assert_array_equal(scratched, in_memory)


def test_scratch_store_is_renamed_into_place_and_leaves_nothing(tmp_path):
    store = ScratchStore(tmp_path)((4, 1, 2, 2))
    store[:] = np.arange(16, dtype=np.uint8).reshape(4, 1, 2, 2)
    NpyDataset(filepath=str(tmp_path / "images.npy")).save(store)
    np.testing.assert_array_equal(np.load(tmp_path / "images.npy"), np.arange(16).reshape(4, 1, 2, 2))
    assert scratch_files(tmp_path) == []


def test_skipped_files_shrink_the_store_by_a_streamed_copy(tmp_path):
    root = tmp_path / "images"
    for i in range(5):
        save_image(root / f"{i}.png", Image.new("L", (4, 4), 40 * i))
    corrupt_png(root / "2.png")
    read = read_image_folder(root, 1, (4, 4), workers=1, on_error="skip", allocate=ScratchStore(tmp_path))
    assert read.images.shape == (4, 1, 4, 4)
    persist_store(read.images, tmp_path / "images.npy")
    stored = np.load(tmp_path / "images.npy")
    assert stored[:, 0, 0, 0].tolist() == [0, 40, 120, 160]
    assert scratch_files(tmp_path) == []


def test_a_killed_runs_scratch_file_is_removed_by_the_next(tmp_path):
    dead = tmp_path / f"{SCRATCH_PREFIX}dead.npy"
    dead.write_bytes(b"left by a killed run")
    new = ScratchStore(tmp_path)((2, 1, 2, 2))
    assert not dead.exists()
    assert scratch_files(tmp_path) == [Path(new.filename)]


def test_ingest_with_a_scratch_dir_gives_the_same_store_and_hash(tmp_path):
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for i in range(4):
            save_image(root / name / f"{i}.png", Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)))
    values = {"dataset": "folder", "path": str(root), "image_size": [6, 6], "workers": 1}
    in_memory, index, summary = ingest(values)
    scratched, scratch_index, scratch_summary = ingest({**values, "scratch_dir": str(tmp_path / "scratch")})
    assert isinstance(scratched, np.memmap)
    np.testing.assert_array_equal(scratched, in_memory)
    assert scratch_summary["data_hash"] == summary["data_hash"]
    assert scratch_index.equals(index)


def test_a_failed_ingestion_leaves_no_scratch_file(tmp_path):
    root = tmp_path / "images"
    save_image(root / "0.png", Image.new("L", (4, 4)))
    corrupt_png(root / "1.png")
    with pytest.raises(ValueError, match="1.png"):
        ingest({"dataset": "folder", "path": str(root), "workers": 1, "scratch_dir": str(tmp_path / "scratch")})
    assert scratch_files(tmp_path / "scratch") == []
