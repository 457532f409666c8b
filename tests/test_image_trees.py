"""Image trees: archives read in place, split folders kept, class names carried to the index."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from selfsup.config import IngestionParams
from selfsup.data.folders import read_image_folder
from selfsup.data.sources import load_image_set, outline_image_set
from selfsup.data.store import SCRATCH_PREFIX
from selfsup.errors import DataError
from selfsup.pipelines.ingestion.nodes import ingest
from tests.test_readers import corrupt_png, make_labeled_folder, save_image, solid


def archive_folder(folder: Path, archive: Path, wrap: str | None = None, extra: dict[str, bytes] | None = None) -> Path:
    """``folder``'s files in a tar (any compression by suffix) or zip, optionally under ``wrap/``."""
    files = {
        (f"{wrap}/" if wrap else "") + file.relative_to(folder).as_posix(): file.read_bytes()
        for file in sorted(folder.rglob("*"))
        if file.is_file()
    }
    files.update(extra or {})
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as bundle:
            for name, data in files.items():
                bundle.writestr(name, data)
    else:
        mode = "w:gz" if archive.name.endswith(".gz") else "w"
        with tarfile.open(archive, mode) as bundle:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                bundle.addfile(info, io.BytesIO(data))
    return archive


def split_tree(root: Path, splits=("train", "test"), classes=("cats", "dogs"), per_class=3) -> Path:
    for split in splits:
        for label, name in enumerate(classes):
            for index in range(per_class):
                shade = 40 * label + 10 * index + (100 if split != "train" else 0)
                save_image(root / split / name / f"{index}.png", solid("L", (4, 4), shade))
    return root


def params(path: Path, **overrides) -> IngestionParams:
    return IngestionParams(
        dataset=overrides.pop("dataset", "folder"), path=str(path), channels=1, image_size=(4, 4), **overrides
    )


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".zip"])
def test_archive_reads_like_its_folder(tmp_path, suffix):
    folder = make_labeled_folder(tmp_path / "pets")
    junk = {"pets/.DS_Store": b"x", "__MACOSX/pets/cats/._b.png": b"x", "pets/cats/.hidden.png": b"x"}
    archive = archive_folder(folder, tmp_path / f"pets{suffix}", wrap="pets", extra=junk)
    from_folder = read_image_folder(folder, channels=3, size=(8, 8), progress=False)
    from_archive = read_image_folder(archive, channels=3, size=(8, 8), workers=3, progress=False)
    assert from_archive.paths == from_folder.paths
    assert from_archive.class_names == ["cats", "dogs"]
    np.testing.assert_array_equal(from_archive.labels, from_folder.labels)
    np.testing.assert_array_equal(from_archive.images, from_folder.images)


def test_archive_member_that_does_not_decode(tmp_path):
    save_image(tmp_path / "flat" / "a.png", solid("L", (4, 4), 50))
    corrupt_png(tmp_path / "flat" / "b.png")
    archive = archive_folder(tmp_path / "flat", tmp_path / "flat.zip")
    with pytest.raises(DataError, match=r"flat\.zip:b\.png"):
        read_image_folder(archive, channels=1, size=(4, 4), progress=False)
    read = read_image_folder(archive, channels=1, size=(4, 4), on_error="skip", progress=False)
    assert read.paths == ["a.png"] and [path for path, _ in read.skipped] == ["b.png"]


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_truncated_archive_is_one_error_and_writes_nothing(tmp_path, suffix):
    archive = archive_folder(split_tree(tmp_path / "tree", per_class=20), tmp_path / f"tree{suffix}")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    scratch = tmp_path / "scratch"
    with pytest.raises(DataError, match="tree" + suffix.replace(".", r"\.")):
        ingest(
            {
                "dataset": "folder",
                "path": str(archive),
                "channels": 1,
                "image_size": [4, 4],
                "scratch_dir": str(scratch),
            }
        )
    assert not list(scratch.glob(f"{SCRATCH_PREFIX}*")) if scratch.exists() else True


def test_split_folders_are_kept_with_class_names(tmp_path):
    root = split_tree(tmp_path / "tree")
    image_set = load_image_set(params(root))
    index = image_set.index
    assert list(index["split"]) == ["test"] * 6 + ["train"] * 6
    assert list(index["id"][:2]) == ["test/cats/0.png", "test/cats/1.png"]
    assert list(index["class_name"]) == (["cats"] * 3 + ["dogs"] * 3) * 2
    assert list(index["label"]) == ([0] * 3 + [1] * 3) * 2
    assert image_set.images[0].max() == 100  # the test image, not one the reader moved to test
    outline = outline_image_set(params(root))
    assert outline.n_train == 6 and list(outline.train_labels) == [0, 0, 0, 1, 1, 1]


def test_val_is_held_out_without_test_and_a_third_split_with_it(tmp_path):
    only_val = load_image_set(params(split_tree(tmp_path / "a", splits=("train", "val")))).index
    assert sorted(set(only_val["split"])) == ["test", "train"]
    assert (only_val["id"].str.startswith("val/") == (only_val["split"] == "test")).all()
    all_three = load_image_set(params(split_tree(tmp_path / "b", splits=("train", "val", "test")))).index
    assert all_three["split"].value_counts().to_dict() == {"test": 6, "train": 6, "val": 6}


def test_train_only_gets_a_split_made_for_it(tmp_path):
    index = load_image_set(params(split_tree(tmp_path / "a", splits=("train",), per_class=5))).index
    assert index["split"].value_counts().to_dict() == {"train": 8, "test": 2}
    assert list(index["class_name"].unique()) == ["cats", "dogs"]


def test_flat_split_folders_are_unlabelled(tmp_path):
    for split, count in (("train", 4), ("test", 2)):
        for index in range(count):
            save_image(tmp_path / split / f"{index}.png", solid("L", (4, 4), index))
    index = load_image_set(params(tmp_path)).index
    assert index["split"].value_counts().to_dict() == {"train": 4, "test": 2}
    assert index["label"].isna().all() and index["class_name"].isna().all()


def test_split_with_classes_that_train_lacks_or_misses(tmp_path):
    root = split_tree(tmp_path / "tree")
    save_image(root / "test" / "birds" / "0.png", solid("L", (4, 4), 0))
    with pytest.raises(DataError, match=r"tree/test: has \['birds'\] that train/ lacks"):
        load_image_set(params(root))
    other = split_tree(tmp_path / "other", splits=("train",), classes=("cats", "dogs", "fish"))
    split_tree(other, splits=("test",), classes=("cats", "dogs"))
    with pytest.raises(DataError, match=r"other/test: lacks \['fish'\]"):
        outline_image_set(params(other))


def test_splits_labelled_differently(tmp_path):
    root = split_tree(tmp_path / "tree", splits=("train",))
    save_image(root / "test" / "loose.png", solid("L", (4, 4), 0))
    with pytest.raises(DataError, match="train hold class folders but test hold images directly"):
        load_image_set(params(root))


def test_class_folders_named_like_splits_alongside_others_are_classes(tmp_path):
    root = split_tree(tmp_path / "tree", splits=("train",), classes=("a", "b"))
    save_image(root / "other" / "0.png", solid("L", (4, 4), 0))
    save_image(root / "other" / "1.png", solid("L", (4, 4), 0))
    index = load_image_set(params(root)).index
    assert sorted(index["class_name"].unique()) == ["other", "train"]
