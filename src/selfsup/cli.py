"""Project commands: Kedro's own ``run``, with input errors shown as one line.

Kedro loads ``<package>.cli`` and lets its commands override the built-in
ones. ``kedro run`` keeps every option; an ``InputError`` (a bad parameter,
file or dataset) ends the run with ``Error: <message>`` and exit code 2
instead of a traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools

import click
from kedro.framework.cli.project import run as kedro_run

from selfsup.errors import InputError

INPUT_ERROR_EXIT_CODE = 2


def input_error_in(error: BaseException) -> InputError | None:
    """The ``InputError`` that caused ``error``, following Kedro's re-raises, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, InputError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _one_line_input_errors(callback):
    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except Exception as error:
            cause = input_error_in(error)
            if cause is None:
                raise
            click.secho(f"Error: {cause}", fg="red", err=True)
            raise click.exceptions.Exit(INPUT_ERROR_EXIT_CODE) from None

    return run


@click.group(name="selfsup")
def cli() -> None:
    """selfsup's project commands."""


cli.add_command(
    click.Command(
        name="run",
        params=kedro_run.params,
        callback=_one_line_input_errors(kedro_run.callback),
        help=kedro_run.help,
        short_help=kedro_run.short_help,
    )
)
