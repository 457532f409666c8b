"""The text readers: layouts, deduplication before the split, the stratified split, and every bad input."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from selfsup.config import IngestionParams
from selfsup.errors import DataError, MissingInputError
from selfsup.text.readers import WORDNET_NOUNS, load_text_set
from tests.text_data import labelled_text_folder, text_csv


def read(dataset: str, path, **changes):
    return load_text_set(IngestionParams(dataset=dataset, path=str(path), **changes))


def test_a_labelled_folder_gives_its_classes_and_a_stratified_held_out_split(tmp_path):
    text_set = read("text_folder", labelled_text_folder(tmp_path / "texts"))
    index = text_set.index
    assert list(text_set.texts["id"]) == list(index["id"])
    assert sorted(index["class_name"].unique()) == ["animals", "food", "tools"]
    test_counts = index[index["split"] == "test"]["class_name"].value_counts()
    assert set(test_counts) == {8}  # 20 % of 40 per class
    first = text_set.texts.iloc[0]
    assert first["text"] == (tmp_path / "texts" / first["id"]).read_text()


def test_the_split_follows_the_seed(tmp_path):
    folder = labelled_text_folder(tmp_path / "texts")
    splits = [read("text_folder", folder, seed=seed).index["split"].tolist() for seed in (0, 0, 1)]
    assert splits[0] == splits[1] != splits[2]


def test_an_unlabelled_folder_is_read_without_labels(tmp_path):
    for position in range(10):
        (tmp_path / f"{position}.txt").write_text(f"text number {position}")
    index = read("text_folder", tmp_path).index
    assert index["label"].isna().all() and (index["split"] == "test").sum() == 2


def test_exact_duplicates_are_dropped_before_the_split(tmp_path):
    folder = labelled_text_folder(tmp_path / "texts")
    copied = (folder / "food" / "0040.txt").read_text()
    (folder / "food" / "zz-copy.txt").write_text(f"  {copied}\n")
    text_set = read("text_folder", folder)
    assert text_set.duplicates == 1
    assert text_set.texts["text"].is_unique and "food/zz-copy.txt" not in set(text_set.texts["id"])


def test_a_csv_with_named_columns_and_string_labels(tmp_path):
    path = text_csv(tmp_path / "texts.csv")
    text_set = read("text_csv", path, text_column="body", label_column="topic")
    assert len(text_set.texts) == 120
    table = pd.read_csv(path)
    row = int(text_set.texts["id"].iloc[0].removeprefix("row-")) - 1
    assert text_set.texts["text"].iloc[0] == table["body"].iloc[row]
    assert text_set.index["class_name"].iloc[0] == table["topic"].iloc[row]


def test_a_parquet_file_without_labels(tmp_path):
    pd.DataFrame({"text": [f"sentence {i}" for i in range(20)]}).to_parquet(tmp_path / "t.parquet")
    index = read("text_csv", tmp_path / "t.parquet", label_column=None).index
    assert len(index) == 20 and index["label"].isna().all()


@pytest.mark.skipif(not WORDNET_NOUNS.is_file(), reason="WordNet is not installed (apt-get install -y wordnet-base)")
def test_wordnet_noun_glosses_are_labelled_by_their_26_lexicographer_files():
    text_set = load_text_set(IngestionParams(dataset="wordnet"))
    index = text_set.index
    assert index["label"].nunique() == 26 and "noun.artifact" in set(index["class_name"])
    assert len(text_set.texts) + text_set.duplicates == 82115
    entity = text_set.texts.set_index("id").loc["noun-00001740", "text"]
    assert entity.startswith("that which is perceived or known or inferred")


# ------------------------------------------------------------------ bad inputs


def test_an_empty_file_fails_with_its_path_or_is_skipped_and_counted(tmp_path, caplog):
    folder = labelled_text_folder(tmp_path / "texts")
    (folder / "tools" / "empty.txt").write_text("  \n")
    with pytest.raises(DataError, match=r"tools/empty\.txt: empty file"):
        read("text_folder", folder)
    with caplog.at_level(logging.WARNING):
        text_set = read("text_folder", folder, on_error="skip")
    assert [reason for _, reason in text_set.skipped] == ["empty file"] and "empty.txt" in caplog.text


def test_a_file_that_is_not_utf8_fails_with_its_path(tmp_path):
    folder = labelled_text_folder(tmp_path / "texts")
    (folder / "food" / "latin1.txt").write_bytes("crème brûlée".encode("latin-1"))
    with pytest.raises(DataError, match=r"food/latin1\.txt: not UTF-8 text"):
        read("text_folder", folder)
    assert len(read("text_folder", folder, on_error="skip").skipped) == 1


def test_a_csv_without_the_named_column_fails_naming_it_and_the_columns(tmp_path):
    path = text_csv(tmp_path / "texts.csv")
    with pytest.raises(DataError, match=r"no column 'text' \(ingestion\.text_column\); its columns: n, body, topic"):
        read("text_csv", path, label_column="topic")
    with pytest.raises(DataError, match=r"no column 'label' \(ingestion\.label_column\)"):
        read("text_csv", path, text_column="body")


def test_a_label_column_with_one_class_fails(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"text": [f"sentence {i}" for i in range(10)], "label": "same"}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"every text has the label 'same'; labelled texts need at least 2 classes"):
        read("text_csv", path)


def test_empty_texts_and_missing_labels_in_a_csv(tmp_path):
    path = tmp_path / "gaps.csv"
    texts = ["a cat", "", "a dog", "a pear", "a plum", "a fig", "a cow", "a yak", "a bee", "a kiwi", "a lime"]
    rows = {"text": texts, "label": ["x", "x", None, "y", "x", "y", "x", "x", "x", "y", "y"]}
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"gaps\.csv row 2: empty text"):
        read("text_csv", path)
    skipped = read("text_csv", path, on_error="skip").skipped
    assert [reason for _, reason in skipped] == ["empty text", "no label in column 'label'"]


def test_an_empty_or_non_utf8_csv_fails(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.csv: empty file"):
        read("text_csv", tmp_path / "empty.csv")
    (tmp_path / "latin.csv").write_bytes("text,label\ncrème,a\nbrûlée,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.csv: not UTF-8 text"):
        read("text_csv", tmp_path / "latin.csv")


def test_folder_layouts_that_cannot_be_read(tmp_path):
    with pytest.raises(MissingInputError, match=r"ingestion\.path='.*nowhere' does not exist"):
        read("text_folder", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no \.txt files found"):
        read("text_folder", tmp_path / "empty")
    folder = labelled_text_folder(tmp_path / "mixed")
    (folder / "loose.txt").write_text("a loose text")
    with pytest.raises(DataError, match=r"both directly in the folder and in subfolders"):
        read("text_folder", folder)


def test_a_folder_where_every_file_is_unreadable_fails_even_when_skipping(tmp_path):
    for position in range(3):
        (tmp_path / f"{position}.txt").write_text("")
    with pytest.raises(DataError, match=r"none of its texts could be read \(3 skipped\)"):
        read("text_folder", tmp_path, on_error="skip")


def test_missing_wordnet_names_the_package(tmp_path):
    with pytest.raises(MissingInputError, match=r"apt-get install -y wordnet-base"):
        read("wordnet", tmp_path)


def test_the_outline_counts_the_training_texts(tmp_path):
    from selfsup.text.readers import outline_text_set

    outline = outline_text_set(IngestionParams(dataset="text_folder", path=str(labelled_text_folder(tmp_path))))
    assert outline.n_train == 96 and np.bincount(outline.train_labels).tolist() == [32, 32, 32]
