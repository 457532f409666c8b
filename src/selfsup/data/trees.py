"""Trees of image files: a folder on disk, or a ``.tar`` / ``.tar.gz`` / ``.zip`` archive read in place.

A tree lists its image files as POSIX paths relative to its root, sorted, and streams
them to a decoder: a folder hands out file paths; an archive reads its members once,
in the archive's own order, and hands out their bytes, so nothing is extracted to disk
and a gzipped tar is decompressed front to back instead of seeking.

Hidden files and folders (a name starting with '.') are skipped with everything in
them, and so is ``__MACOSX/``, the resource-fork folder that macOS adds to zips.
An archive that wraps everything in one folder (``pets.zip`` holding ``pets/...``)
is read from inside that folder, unless the folder is a split (train, val, test).
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from selfsup.errors import DataError, MissingInputError, NotAFolderError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
SPLIT_FOLDERS = ("train", "val", "test")
_SKIPPED_FOLDERS = ("__MACOSX",)
# What tarfile, zipfile and gzip raise for truncated or corrupt archives.
ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError)


def is_image_file(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def _is_visible(parts: tuple[str, ...]) -> bool:
    return not any(part.startswith(".") or part in _SKIPPED_FOLDERS for part in parts)


def is_archive(path: str | os.PathLike) -> bool:
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    """Every image file under ``folder`` (recursive), sorted by relative path.

    Image files are those with an extension in ``IMAGE_EXTENSIONS`` (any case). Hidden
    files and folders (name starting with '.') are skipped, and so is everything in them.
    """
    root = Path(folder)
    if not root.exists():
        raise MissingInputError(f"{root}: image folder does not exist")
    if not root.is_dir():
        raise NotAFolderError(
            f"{root}: expected an image folder or a {'/'.join(ARCHIVE_SUFFIXES)} archive, found a file"
        )
    found = []
    for directory, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if _is_visible((name,))]
        found.extend(Path(directory, name) for name in files if _is_visible((name,)) and is_image_file(name))
    return sorted(found, key=lambda file: file.relative_to(root).parts)


class FolderTree:
    """The image files under a folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.files = list_image_files(self.root)
        self.paths = [file.relative_to(self.root).as_posix() for file in self.files]

    def name_of(self, path: str) -> str:
        return str(self.root / path)

    def stream(self) -> Iterator[tuple[int, Path]]:
        """(index into ``paths``, the file to decode), in ``paths`` order."""
        return enumerate(self.files)


class ArchiveTree:
    """The image members of a tar (any compression tarfile reads) or zip archive."""

    def __init__(self, archive: str | os.PathLike):
        self.root = Path(archive)
        if not self.root.is_file():
            raise MissingInputError(f"{self.root}: archive does not exist")
        members = sorted((PurePosixPath(name).parts, name) for name in self._member_names() if is_image_file(name))
        members = [(parts, name) for parts, name in members if _is_visible(parts)]
        prefix = _wrapping_folders([parts for parts, _ in members])
        self._position = {name: index for index, (_, name) in enumerate(members)}
        self.paths = ["/".join(parts[prefix:]) for parts, _ in members]

    def name_of(self, path: str) -> str:
        return f"{self.root}:{path}"

    def stream(self) -> Iterator[tuple[int, BinaryIO]]:
        """(index into ``paths``, the member's bytes), in the archive's order."""
        try:
            yield from self._read_members()
        except ARCHIVE_ERRORS as error:
            raise DataError(f"{self.root}: cannot read the archive ({type(error).__name__}: {error})") from error

    def _member_names(self) -> list[str]:
        try:
            if zipfile.is_zipfile(self.root):
                with zipfile.ZipFile(self.root) as archive:
                    return [info.filename for info in archive.infolist() if not info.is_dir()]
            # Stream mode reads the whole (decompressed) archive once, so a truncated one fails here.
            with tarfile.open(self.root, "r|*") as archive:
                return [member.name for member in archive if member.isfile()]
        except ARCHIVE_ERRORS as error:
            raise DataError(
                f"{self.root}: not a readable {'/'.join(ARCHIVE_SUFFIXES)} archive ({type(error).__name__}: {error})"
            ) from error

    def _read_members(self) -> Iterator[tuple[int, BinaryIO]]:
        if zipfile.is_zipfile(self.root):
            with zipfile.ZipFile(self.root) as archive:
                for info in archive.infolist():
                    if info.filename in self._position:
                        yield self._position[info.filename], io.BytesIO(archive.read(info))
            return
        with tarfile.open(self.root, "r|*") as archive:
            for member in archive:
                if member.name in self._position:
                    yield self._position[member.name], io.BytesIO(archive.extractfile(member).read())


def _wrapping_folders(paths: list[tuple[str, ...]]) -> int:
    """How many leading folders every path shares and can be dropped (never a split folder)."""
    depth = 0
    while paths and all(len(parts) > depth + 1 for parts in paths):
        first = paths[0][depth]
        if first in SPLIT_FOLDERS or any(parts[depth] != first for parts in paths):
            break
        depth += 1
    return depth


def open_image_tree(path: str | os.PathLike) -> FolderTree | ArchiveTree:
    """The tree at ``path``: an archive if its name ends in one of ``ARCHIVE_SUFFIXES``, else a folder."""
    return ArchiveTree(path) if is_archive(path) else FolderTree(path)
