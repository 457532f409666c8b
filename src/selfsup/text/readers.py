"""Text dataset readers. Each returns a ``TextSet``: the texts, deduplicated, and their index with a held-out split.

- ``text_folder``: ``DIR/CLASS/*.txt`` (labelled by folder) or ``DIR/*.txt`` (unlabelled), one text per file;
- ``text_csv``: a CSV or parquet file with a column of texts and an optional column of labels;
- ``wordnet``: the noun glosses of WordNet 3.0 (``data.noun``), labelled by their lexicographer file.

Exact duplicates (after stripping surrounding white space) are dropped before the split, the first
kept, so that no text is both trained on and tested. An unreadable input (an empty or non-UTF-8 file,
an empty text) stops the run with its name, or with ``ingestion.on_error: skip`` is left out, logged
and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from selfsup.data.sources import DatasetOutline, make_index, split_index
from selfsup.errors import DataError, MissingInputError

logger = logging.getLogger(__name__)

WORDNET_NOUNS = Path("/usr/share/wordnet/data.noun")
# WordNet 3.0's lexicographer files of nouns, by their number (03 … 28) in data.noun.
_NOUN_FILES = (
    "Tops act animal artifact attribute body cognition communication event feeling food group location motive "
    "object person phenomenon plant possession process quantity relation shape state substance time"
)
NOUN_LEXICOGRAPHER_FILES = {number: f"noun.{name}" for number, name in enumerate(_NOUN_FILES.split(), start=3)}


@dataclass(frozen=True)
class TextSet:
    texts: pd.DataFrame  # id, text
    index: pd.DataFrame  # the image_index contract: id, split, label, class_name, source
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file or row, reason) left out
    duplicates: int = 0  # exact duplicates dropped


@dataclass(frozen=True)
class _Read:
    """What a reader found, before deduplication and the split."""

    ids: list[str]
    texts: list[str]
    labels: np.ndarray | None
    class_names: list[str] | None
    source: str
    skipped: list[tuple[str, str]]


class _Problems:
    """Collects unusable inputs: ``fail`` raises at the first, ``skip`` logs and keeps them for the summary."""

    def __init__(self, on_error: str):
        self.on_error, self.skipped = on_error, []

    def __call__(self, where: str, reason: str) -> None:
        if self.on_error == "fail":
            raise DataError(f"{where}: {reason} (ingestion.on_error: skip leaves it out)")
        logger.warning("Skipping %s: %s", where, reason)
        self.skipped.append((where, reason))


def text_folder(params) -> _Read:
    folder = _existing_path(params)
    if not folder.is_dir():
        raise DataError(
            f"ingestion.path={params.path!r} is not a folder; text_folder reads DIR/CLASS/*.txt or DIR/*.txt"
        )
    flat = sorted(p for p in folder.glob("*.txt") if p.is_file())
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    nested = {name: sorted((folder / name).glob("*.txt")) for name in classes}
    nested = {name: files for name, files in nested.items() if files}
    if flat and nested:
        raise DataError(
            f"{folder}: .txt files lie both directly in the folder and in subfolders; put all in class "
            "subfolders (labelled) or none (unlabelled)"
        )
    if not flat and not nested:
        raise DataError(f"{folder}: no .txt files found (DIR/CLASS/*.txt or DIR/*.txt)")
    problems = _Problems(params.on_error)
    files = flat or [file for files in nested.values() for file in files]
    file_labels = None if flat else [label for label, files in enumerate(nested.values()) for _ in files]
    ids, texts, labels = [], [], []
    for position, file in enumerate(files):
        text = _read_text_file(file, problems)
        if text is not None:
            ids.append(file.relative_to(folder).as_posix())
            texts.append(text)
            labels.append(file_labels[position] if file_labels else None)
    names = list(nested) if nested else None
    return _Read(ids, texts, np.asarray(labels) if names else None, names, str(folder), problems.skipped)


def _read_text_file(file: Path, problems: _Problems) -> str | None:
    try:
        text = file.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError as error:
        problems(str(file), f"not UTF-8 text ({error.reason} at byte {error.start})")
        return None
    if not text:
        problems(str(file), "empty file")
        return None
    return text


def text_csv(params) -> _Read:
    path = _existing_path(params)
    table = _read_table(path)
    wanted = [params.text_column] + ([params.label_column] if params.label_column else [])
    for parameter, column in zip(("text_column", "label_column"), wanted):
        if column not in table.columns:
            raise DataError(
                f"{path}: no column {column!r} (ingestion.{parameter}); its columns: "
                f"{', '.join(map(str, table.columns))}"
            )
    problems = _Problems(params.on_error)
    ids, texts, raw_labels = [], [], []
    labels_column = table[params.label_column] if params.label_column else None
    for row, value in enumerate(table[params.text_column]):
        where = f"{path} row {row + 1}"
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            problems(
                where,
                "empty text"
                if value is None or isinstance(value, str) or pd.isna(value)
                else f"not a text ({type(value).__name__})",
            )
            continue
        if labels_column is not None and pd.isna(labels_column.iloc[row]):
            problems(where, f"no label in column {params.label_column!r}")
            continue
        ids.append(f"row-{row + 1:07d}")
        texts.append(text)
        raw_labels.append(None if labels_column is None else str(labels_column.iloc[row]))
    if labels_column is None:
        return _Read(ids, texts, None, None, str(path), problems.skipped)
    names = sorted(set(raw_labels))
    codes = {name: code for code, name in enumerate(names)}
    return _Read(ids, texts, np.array([codes[n] for n in raw_labels]), names, str(path), problems.skipped)


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except (pd.errors.ParserError, OSError, ValueError) as error:
        raise DataError(
            f"{path}: cannot be read as {'parquet' if path.suffix == '.parquet' else 'CSV'} ({error})"
        ) from None


def wordnet(params) -> _Read:
    """The gloss of every noun synset, labelled by its lexicographer file (26 classes, ``noun.artifact`` …)."""
    path = Path(params.path).expanduser() if params.path else WORDNET_NOUNS
    if path.is_dir():
        path = path / "data.noun"
    if not path.is_file():
        raise MissingInputError(
            f"{path} does not exist; install WordNet 3.0 (apt-get install -y wordnet-base) "
            "or point ingestion.path at its data.noun"
        )
    ids, texts, numbers = [], [], []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(" "):  # the licence at the top
                continue
            fields, bar, gloss = line.partition(" | ")
            offset, number = fields.split(" ", 2)[:2]
            if not bar or int(number) not in NOUN_LEXICOGRAPHER_FILES or not gloss.strip():
                raise DataError(f"{path}: line {offset!r} is not a WordNet noun synset with a gloss")
            ids.append(f"noun-{offset}")
            texts.append(gloss.strip())
            numbers.append(int(number))
    if not ids:
        raise DataError(f"{path}: no synsets found")
    present = sorted(set(numbers))
    codes = {number: code for code, number in enumerate(present)}
    names = [NOUN_LEXICOGRAPHER_FILES[number] for number in present]
    return _Read(ids, texts, np.array([codes[n] for n in numbers]), names, str(path), [])


def _existing_path(params) -> Path:
    if not params.path:
        raise DataError(f"ingestion.path is required for ingestion.dataset={params.dataset!r}")
    path = Path(params.path).expanduser()
    if not path.exists():
        raise MissingInputError(f"ingestion.path={params.path!r} does not exist")
    return path


TEXT_READERS = {"text_folder": text_folder, "text_csv": text_csv, "wordnet": wordnet}


def load_text_set(params) -> TextSet:
    """Read the texts that ``params`` (``IngestionParams``) names, deduplicate them and split them."""
    read = TEXT_READERS[params.dataset](params)
    if not read.texts:
        raise DataError(f"{read.source}: none of its texts could be read ({len(read.skipped)} skipped)")
    keep = ~pd.Series(read.texts).duplicated().to_numpy()
    duplicates = int((~keep).sum())
    if duplicates:
        logger.info("Dropped %d exact duplicate texts (the first of each kept)", duplicates)
    ids = np.asarray(read.ids, dtype=object)[keep]
    labels = None if read.labels is None else read.labels[keep]
    if labels is not None and len(np.unique(labels)) < 2:
        raise DataError(
            f"{read.source}: every text has the label {read.class_names[labels[0]]!r}; labelled texts "
            "need at least 2 classes (for text_csv, ingestion.label_column: null reads them unlabelled)"
        )
    split = split_index(list(ids), labels, read.source, params)
    index = make_index(split["id"], split["split"], labels, read.source, read.class_names)
    texts = pd.DataFrame(
        {"id": index["id"], "text": pd.Series(np.asarray(read.texts, dtype=object)[keep], dtype="string")}
    )
    return TextSet(texts, index, read.skipped, duplicates)


def outline_text_set(params) -> DatasetOutline:
    """What the run-start checks need: the number of training texts and their labels (texts read, ~1 s)."""
    text_set = load_text_set(params)
    train = (text_set.index["split"] == "train").to_numpy()
    labels = text_set.index["label"]
    train_labels = None if labels.isna().all() else labels[train].to_numpy(np.int64)
    return DatasetOutline(None, int(train.sum()), train_labels)
