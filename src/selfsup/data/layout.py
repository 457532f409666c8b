"""Labels and splits from where image files lie in a tree.

Layouts, by relative path:

* ``CLASS/...``: labelled; the sorted first-level folder names are the classes.
* ``IMAGE``: every image directly in the root; unlabelled.
* ``{train,val,test}/CLASS/...`` or ``{train,val,test}/IMAGE`` (ImageNet style): the
  given split is kept. ``test`` is the held-out split; ``val`` is too when there is no
  ``test``, and is kept as a third split ``val`` (embedded, not evaluated) when there is.
  Every split must be labelled the same way and, when labelled, have the same classes.
  A tree with only ``train/`` gets a held-out split made by the reader.

The split layout is recognised when every first-level entry is one of those split
folders and ``train`` is among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from selfsup.data.trees import SPLIT_FOLDERS
from selfsup.errors import DataError


@dataclass(frozen=True)
class Layout:
    """``labels`` index ``class_names`` (None: unlabelled); ``splits`` is None where the reader splits."""

    class_names: list[str]
    labels: np.ndarray | None
    splits: np.ndarray | None

    @property
    def has_held_out(self) -> bool:
        return self.splits is not None and bool((self.splits == "test").any())


def layout_of(paths: list[str], source: str) -> Layout:
    """The layout of the relative POSIX ``paths`` of one tree; ``source`` names it in errors."""
    if not paths:
        raise DataError(f"{source}: no image files found")
    firsts = {PurePosixPath(path).parts[0] for path in paths}
    nested = all(len(PurePosixPath(path).parts) > 1 for path in paths)
    if nested and "train" in firsts and firsts <= set(SPLIT_FOLDERS):
        return _split_layout(paths, firsts, source)
    class_names, labels = _classes(paths, source)
    return Layout(class_names, labels, None)


def _split_layout(paths: list[str], split_folders: set[str], source: str) -> Layout:
    split_of_path = [PurePosixPath(path).parts[0] for path in paths]
    inner = [PurePosixPath(*PurePosixPath(path).parts[1:]).as_posix() for path in paths]
    by_split = {split: [p for p, s in zip(inner, split_of_path) if s == split] for split in sorted(split_folders)}
    layouts = {split: _classes(split_paths, f"{source}/{split}") for split, split_paths in by_split.items()}
    labelled = {split for split, (_, labels) in layouts.items() if labels is not None}
    if labelled and labelled != set(by_split):
        raise DataError(
            f"{source}: {', '.join(sorted(labelled))} hold class folders but "
            f"{', '.join(sorted(set(by_split) - labelled))} hold images directly; "
            "label every split the same way (SPLIT/CLASS/image) or none (SPLIT/image)"
        )
    if labelled:
        _check_same_classes({split: names for split, (names, _) in layouts.items()}, source)
    class_names, labels = _classes(inner, source) if labelled else ([], None)
    held_out = "test" if "test" in split_folders else "val"
    splits = np.array(["test" if split == held_out else split for split in split_of_path], dtype=object)
    return Layout(class_names, labels, splits)


def _check_same_classes(names_by_split: dict[str, list[str]], source: str) -> None:
    train = set(names_by_split["train"])
    for split, names in names_by_split.items():
        missing, extra = sorted(train - set(names)), sorted(set(names) - train)
        if missing or extra:
            problems = ([f"lacks {missing}"] if missing else []) + ([f"has {extra} that train/ lacks"] if extra else [])
            raise DataError(
                f"{source}/{split}: {' and '.join(problems)}; every split needs the same class folders "
                f"as train/ ({sorted(train)})"
            )


def _classes(paths: list[str], source: str) -> tuple[list[str], np.ndarray | None]:
    """Class names and labels from first-level folders, or ([], None) when every image lies at the top."""
    nested = [path for path in paths if len(PurePosixPath(path).parts) > 1]
    if not nested:
        return [], None
    if len(nested) < len(paths):
        flat = next(path for path in paths if len(PurePosixPath(path).parts) == 1)
        raise DataError(
            f"{source}: images lie both directly in the folder (e.g. {flat}) and in subfolders "
            f"(e.g. {nested[0]}); put every image in a class subfolder for a labeled set, "
            "or none for an unlabeled one"
        )
    class_of_path = [PurePosixPath(path).parts[0] for path in paths]
    class_names = sorted(set(class_of_path))
    index_of_class = {name: index for index, name in enumerate(class_names)}
    return class_names, np.array([index_of_class[name] for name in class_of_path], dtype=np.int64)
