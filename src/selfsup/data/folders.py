"""Decode a tree of image files (a folder or an archive) into one uint8 (N, C, H, W) array."""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm.auto import tqdm

from selfsup.data.images import ImageDecodeError, check_target, decode_image
from selfsup.data.layout import Layout, layout_of
from selfsup.data.store import Allocate, allocate_in_memory
from selfsup.data.trees import IMAGE_EXTENSIONS, ArchiveTree, FolderTree, open_image_tree
from selfsup.errors import DataError

logger = logging.getLogger(__name__)

# Decodes queued per worker: enough to keep the threads busy while the archive is read,
# few enough that only a handful of encoded images wait in memory.
_QUEUED_PER_WORKER = 8


@dataclass(frozen=True)
class FolderImages:
    """What ``read_image_folder`` found.

    ``images`` is uint8 (N, C, H, W); ``paths`` the images' POSIX paths relative to the
    folder, in the same order; ``labels`` int64 (N,) indices into ``class_names``, or
    None for an unlabelled tree (then ``class_names`` is empty); ``splits`` the split
    folder of each image ('train', 'test', 'val'), or None when the tree has none;
    ``skipped`` the (relative path, reason) of files that could not be decoded under
    ``on_error="skip"``.
    """

    images: np.ndarray
    paths: list[str]
    labels: np.ndarray | None
    class_names: list[str]
    splits: np.ndarray | None
    skipped: list[tuple[str, str]]


def folder_layout(path: str | os.PathLike) -> tuple[list[str], Layout]:
    """The image paths of the folder or archive at ``path`` and their layout, without decoding."""
    tree = _open_tree(path)
    return tree.paths, layout_of(tree.paths, str(path))


def _open_tree(path: str | os.PathLike) -> FolderTree | ArchiveTree:
    tree = open_image_tree(path)
    if not tree.paths:
        raise DataError(f"{path}: no image files found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return tree


def read_image_folder(
    folder: str | os.PathLike,
    channels: int,
    size: tuple[int, int],
    workers: int = 2,
    on_error: str = "fail",
    progress: bool = True,
    allocate: Allocate = allocate_in_memory,
) -> FolderImages:
    """Decode every image of the folder or archive at ``folder`` to uint8 (N, channels, H, W).

    Layouts (labelled by class folders, flat, split folders) are those of
    ``selfsup.data.layout``; class names come from all files found, so a class whose
    files were all skipped keeps its index. Archives are those of ``selfsup.data.trees``,
    read in place.

    Images are decoded as ``decode_image`` describes, ``workers`` at a time, straight
    into one array from ``allocate``, in the order of the sorted relative paths.
    ``on_error``: "fail" raises the first undecodable file's ``ImageDecodeError``;
    "skip" logs a warning per file, leaves it out and lists it in ``skipped``.
    """
    _check_decoding(channels, size, workers, on_error)
    tree = _open_tree(folder)
    layout = layout_of(tree.paths, str(folder))
    images = allocate((len(tree.paths), channels, *size))
    failures = _decode_stream(
        images,
        tree.stream(),
        tree.name_of,
        tree.paths,
        channels,
        size,
        workers,
        on_error,
        f"decoding {Path(folder).name}" if progress else None,
    )
    skipped = [(tree.paths[index], reason) for index, reason in failures]
    for path, reason in skipped:
        logger.warning("skipping %s: %s", tree.name_of(path), reason)
    if len(skipped) == len(tree.paths):
        raise DataError(f"{folder}: none of the {len(tree.paths)} image files could be decoded")
    kept = _drop_rows(images, [index for index, _ in failures])
    return FolderImages(
        images=images[: len(kept)],
        paths=[tree.paths[index] for index in kept],
        labels=None if layout.labels is None else layout.labels[kept],
        class_names=layout.class_names,
        splits=None if layout.splits is None else layout.splits[kept],
        skipped=skipped,
    )


def decode_images(
    files: Sequence[Path],
    channels: int,
    size: tuple[int, int],
    workers: int = 2,
    on_error: str = "fail",
    progress_label: str | None = None,
    allocate: Allocate = allocate_in_memory,
) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    """Decode ``files`` into uint8 (n_kept, channels, H, W) from ``allocate``, ``workers`` at a time.

    Returns the images, the indices into ``files`` they came from, and the (index, reason)
    of the files left out under ``on_error="skip"``; "fail" raises the first ``ImageDecodeError``.
    A progress bar is shown when ``progress_label`` is given and the output is a terminal.
    """
    _check_decoding(channels, size, workers, on_error)
    files = list(files)
    images = allocate((len(files), channels, *size))
    names = [str(file) for file in files]
    failures = _decode_stream(images, enumerate(files), str, names, channels, size, workers, on_error, progress_label)
    kept = _drop_rows(images, [index for index, _ in failures])
    return images[: len(kept)], kept, failures


def _check_decoding(channels: int, size: Sequence[int], workers: int, on_error: str) -> None:
    check_target(channels, size)
    if on_error not in ("fail", "skip"):
        raise DataError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    if workers < 1:
        raise DataError(f"workers must be at least 1, got {workers}")


def _decode_stream(
    images: np.ndarray,
    sources: Iterable[tuple[int, Path | BinaryIO]],
    name_of,
    paths: list[str],
    channels: int,
    size: tuple[int, int],
    workers: int,
    on_error: str,
    progress_label: str | None,
) -> list[tuple[int, str]]:
    """Decode each (index, source) into ``images[index]`` in parallel; the (index, reason) of failures.

    Threads suffice because Pillow releases the GIL while decoding. At most
    ``_QUEUED_PER_WORKER`` decodes per worker wait, so an archive is never read ahead of
    them into memory. With ``on_error="fail"`` the first failure in stream order is
    raised (as ``name_of(paths[index]): reason``) and the queued decodes are cancelled.
    """

    def decode_one(index: int, source: Path | BinaryIO) -> None:
        images[index] = decode_image(source, channels, size, name=name_of(paths[index]))

    failures: list[tuple[int, str]] = []
    pending: collections.deque[tuple[int, Future]] = collections.deque()

    def finish_oldest() -> None:
        index, future = pending.popleft()
        try:
            future.result()
        except ImageDecodeError as error:
            if on_error == "fail":
                raise
            failures.append((index, error.reason))
        bar.update()

    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(paths), desc=progress_label, unit="image", disable=None if progress_label else True) as bar,
    ):
        try:
            for index, source in sources:
                pending.append((index, pool.submit(decode_one, index, source)))
                if len(pending) >= _QUEUED_PER_WORKER * workers:
                    finish_oldest()
            while pending:
                finish_oldest()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return sorted(failures)


def _drop_rows(images: np.ndarray, dropped: list[int]) -> list[int]:
    """Move the kept rows of ``images`` to its front, in place; returns their old indices.

    In place rather than ``images[kept]`` so memory stays at one output array.
    """
    dropped_set = set(dropped)
    kept = [index for index in range(len(images)) if index not in dropped_set]
    for destination, source in enumerate(kept):
        if destination != source:
            images[destination] = images[source]
    return kept
