"""Errors caused by what the user gave us: a parameter, a file, the data.

They are shown as one line, without a traceback (see ``selfsup.cli``); any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the parameter, file or value and what was expected."""


class ParameterError(InputError):
    """A parameter has a value that is not allowed."""


class DataError(InputError):
    """The data cannot be used as it is."""


class MissingInputError(DataError, FileNotFoundError):
    """A file or folder the run needs does not exist."""


class NotAFolderError(DataError, NotADirectoryError):
    """A folder was expected and something else was found."""
