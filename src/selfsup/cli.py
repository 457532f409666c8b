"""Project commands: Kedro's own ``run``, with input errors shown as one line and list parameters.

Kedro loads ``<package>.cli`` and lets its commands override the built-in
ones. ``kedro run`` keeps every option; an ``InputError`` (a bad parameter,
file or dataset) ends the run with ``Error: <message>`` and exit code 2
instead of a traceback. Any other exception is a bug and keeps its traceback.
``--env NAME`` is also exported as ``KEDRO_ENV`` (as ``kedro ipython --env`` does), so that the
pipeline registry runs the environment's modality by default (``selfsup.pipeline_registry``).
``--params`` is split on top-level commas only, so a list can be given:
``--params augmentation.output_size=[24,24],pretraining.epochs=5``.
"""

from __future__ import annotations

import copy
import functools
import os

import click
from kedro.framework.cli.project import run as kedro_run
from omegaconf import OmegaConf

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


def _environment_exported(callback):
    """``--env NAME`` also as ``KEDRO_ENV``: the pipeline registry picks the environment's default chain by it."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        if kwargs.get("env"):
            os.environ["KEDRO_ENV"] = kwargs["env"]
        return callback(*args, **kwargs)

    return run


def split_top_level(value: str) -> list[str]:
    """``value`` split at the commas outside brackets and braces; empty items dropped."""
    items, current, depth = [], [], 0
    for char in value:
        depth += (char in "[{") - (char in "]}")
        if char == "," and depth <= 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _parse_params(ctx: click.Context, param: click.Parameter, value):
    """``key=value,...`` as a nested dict, values read as Kedro reads them (OmegaConf's dot list)."""
    if not value or isinstance(value, dict):
        return value or {}
    dot_list = []
    for item in split_top_level(value):
        key, equals, rest = item.partition("=")
        if not equals or not key.strip():
            ctx.fail(f"Invalid format of `{param.name}` option: item `{item}` must be KEY=VALUE")
        dot_list.append(f"{key.strip()}={rest}")
    return OmegaConf.to_container(OmegaConf.from_dotlist(dot_list))


def _with_list_params(params: list[click.Parameter]) -> list[click.Parameter]:
    replaced = []
    for option in params:
        if option.name == "params":
            option = copy.copy(option)
            option.callback = _parse_params
        replaced.append(option)
    return replaced


@click.group(name="selfsup")
def cli() -> None:
    """selfsup's project commands."""


cli.add_command(
    click.Command(
        name="run",
        params=_with_list_params(kedro_run.params),
        callback=_one_line_input_errors(_environment_exported(kedro_run.callback)),
        help=kedro_run.help,
        short_help=kedro_run.short_help,
    )
)
