"""``ingestion``: which images or texts to read, and how images are decoded into the image store."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from selfsup.config.base import StrictParams

# Images, then texts (selfsup.config.names.TEXT_DATASETS, read by selfsup.text.readers).
Dataset = Literal["digits", "idx", "folder", "array", "cifar10", "cifar100", "text_folder", "text_csv", "wordnet"]
IDX_FILES = ("train_images", "train_labels", "test_images", "test_labels")


class IngestionParams(StrictParams):
    dataset: Dataset = "digits"
    path: str | None = None
    download: bool = False  # cifar10 / cifar100: fetch the official archive into path when it is not there
    test_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    channels: Literal[1, 3] = 3
    image_size: tuple[int, int] = (32, 32)
    workers: int = Field(2, ge=1)
    on_error: Literal["skip", "fail"] = "fail"
    # Decode folders and arrays into a memory-mapped file here (bounded memory); None decodes in memory.
    # The library writes no files unless asked; the project's conf/base sets data/02_intermediate.
    scratch_dir: str | None = None
    # text_csv: the columns of the CSV or parquet file holding the texts and (optional) their labels
    text_column: str = "text"
    label_column: str | None = "label"
    idx_files: dict[str, str] = {
        "train_images": "train-images-idx3-ubyte.gz",
        "train_labels": "train-labels-idx1-ubyte.gz",
        "test_images": "t10k-images-idx3-ubyte.gz",
        "test_labels": "t10k-labels-idx1-ubyte.gz",
    }

    @model_validator(mode="after")
    def _sizes(self) -> IngestionParams:
        if min(self.image_size) < 1:
            raise ValueError(f"image_size must be positive, got {list(self.image_size)}")
        missing = set(IDX_FILES) - set(self.idx_files)
        if missing:
            raise ValueError(f"idx_files lacks {sorted(missing)}")
        return self
