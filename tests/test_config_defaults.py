"""One source of every default: conf/base lists every schema parameter, with the schema's default."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from selfsup.config import SCHEMAS
from tests.conftest import base_parameters as conf_base  # as Kedro reads it: ${globals:data} resolved

# Folders of the project's data/ layout: conf/base names one, the library's default writes no files.
PROJECT_FOLDERS = ("ingestion.scratch_dir", "pretraining.checkpoint.directory")


def _nested(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    annotation = model.model_fields[name].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def schema_names(model: type[BaseModel], prefix: str) -> set[str]:
    """Dotted names of every parameter of ``model``, nested schemas opened (``pretraining.simclr.temperature``)."""
    names = set()
    for name in model.model_fields:
        nested = _nested(model, name)
        names |= schema_names(nested, f"{prefix}.{name}") if nested else {f"{prefix}.{name}"}
    return names


def conf_names(model: type[BaseModel], values: dict, prefix: str) -> set[str]:
    """Dotted names of ``values``, opened where ``model`` has a nested schema of that name."""
    names = set()
    for name, value in values.items():
        nested = _nested(model, name) if name in model.model_fields else None
        opened = nested and isinstance(value, dict)
        names |= conf_names(nested, value, f"{prefix}.{name}") if opened else {f"{prefix}.{name}"}
    return names


def flat(values: dict, prefix: str) -> dict:
    items = {}
    for name, value in values.items():
        items.update(flat(value, f"{prefix}.{name}") if isinstance(value, dict) else {f"{prefix}.{name}": value})
    return items


def without(values: dict, dotted: str) -> dict:
    """``values`` less the key ``dotted`` (relative to ``values``), copied along its path."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return {key: value for key, value in values.items() if key != head}
    return {**values, head: without(values[head], rest)} if head in values else values


def test_conf_base_has_a_file_section_for_every_schema_and_no_other():
    assert set(conf_base()) == set(SCHEMAS)


@pytest.mark.parametrize("section", sorted(SCHEMAS))
def test_every_schema_parameter_is_in_conf_base(section):
    missing = schema_names(SCHEMAS[section], section) - conf_names(SCHEMAS[section], conf_base()[section], section)
    assert not missing, f"add to conf/base/parameters_{section}.yml, with the schema's default: {sorted(missing)}"


@pytest.mark.parametrize("section", sorted(SCHEMAS))
def test_conf_base_has_no_parameter_the_schema_does_not_know(section):
    unknown = conf_names(SCHEMAS[section], conf_base()[section], section) - schema_names(SCHEMAS[section], section)
    assert not unknown, f"conf/base/parameters_{section}.yml has parameters no schema knows: {sorted(unknown)}"


@pytest.mark.parametrize("section", sorted(SCHEMAS))
def test_schema_defaults_are_the_conf_base_values(section):
    values = conf_base()[section]
    for folder in PROJECT_FOLDERS:
        if folder.startswith(f"{section}."):
            values = without(values, folder.removeprefix(f"{section}."))
    configured = flat(SCHEMAS[section].model_validate(values).model_dump(mode="json"), section)
    defaults = flat(SCHEMAS[section]().model_dump(mode="json"), section)
    differ = {name: (defaults[name], configured[name]) for name in defaults if defaults[name] != configured[name]}
    assert not differ, f"schema default vs conf/base value: {differ}"


@pytest.mark.parametrize("folder", PROJECT_FOLDERS)
def test_project_folders_are_set_in_conf_base_and_unset_in_the_schema(folder):
    section = folder.partition(".")[0]
    assert isinstance(flat(conf_base()[section], section)[folder], str)
    assert flat(SCHEMAS[section]().model_dump(mode="json"), section)[folder] is None
