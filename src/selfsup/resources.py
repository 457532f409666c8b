"""Resource checks made before a large write, so a run fails at once instead of midway."""

from __future__ import annotations

import shutil
from pathlib import Path

from selfsup.errors import InputError

# Keep a margin for the filesystem and the other files a run writes.
DISK_MARGIN = 1.05


class ResourceError(InputError):
    """The machine lacks the disk or memory that the parameters ask for."""


def check_free_space(directory: str | Path, nbytes: int, what: str, lower: str) -> None:
    """Raise ``ResourceError`` when ``directory``'s filesystem has not room for ``nbytes`` more."""
    directory = Path(directory)
    existing = next(parent for parent in (directory, *directory.parents) if parent.exists())
    free = shutil.disk_usage(existing).free
    if nbytes * DISK_MARGIN > free:
        raise ResourceError(
            f"{what} needs {_gib(nbytes)} but {existing} has {_gib(free)} free; free some space or lower {lower}"
        )


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB"
