"""Each environment's outputs, as its configuration resolves them: data/0N_* for base, data/<env>/0N_* for
the others, so that no environment's run replaces another's. Inputs (data/01_raw) stay shared."""

from __future__ import annotations

import re

import pytest
from kedro.config import OmegaConfigLoader

from selfsup.settings import CONFIG_LOADER_ARGS
from tests.conftest import PROJECT_ROOT

FOLDERS = {
    None: "data",
    "fashion_mnist": "data/fashion_mnist",
    "cifar10": "data/cifar10",
    "folder": "data/folder",
    "text_wordnet": "data/text_wordnet",
}
PATH_PARAMETERS = (
    ("ingestion", "scratch_dir"),
    ("pretraining", "checkpoint", "directory"),
    ("embed", "checkpoint"),
    ("detection", "checkpoint"),
)


def configuration(environment: str | None) -> OmegaConfigLoader:
    return OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env=environment, **CONFIG_LOADER_ARGS)


@pytest.mark.parametrize("environment, folder", FOLDERS.items())
def test_every_output_and_path_parameter_lies_in_the_environment_folder(environment, folder):
    loader = configuration(environment)
    names = {"environment": environment or "base", "data": folder}
    assert {key: loader["globals"][key] for key in names} == names  # a text environment adds its modality
    stage_folder = re.compile(rf"{re.escape(folder)}/0[2-8]_[a-z_]+(/|$)")
    catalog = loader["catalog"]
    for name, entry in catalog.items():
        if name == "metrics_runs":  # compare reads every environment's runs
            assert entry["path"] == "data"
        elif entry["type"] != "MemoryDataset":
            assert stage_folder.match(entry.get("filepath") or entry["path"]), name
    parameters = loader["parameters"]
    for keys in PATH_PARAMETERS:
        value = parameters
        for key in keys:
            value = value[key]
        assert stage_folder.match(value), keys


def test_named_environments_read_their_inputs_from_the_shared_raw_folder():
    assert configuration("cifar10")["parameters"]["ingestion"]["path"] == "data/01_raw"


def test_the_environment_names_the_default_chain_by_its_modality(monkeypatch):
    from selfsup.pipeline_registry import environment_modality

    monkeypatch.chdir(PROJECT_ROOT)
    assert environment_modality("text_wordnet") == "text"
    assert {environment_modality(name) for name in (None, "folder", "fashion_mnist", "no_such_env")} == {"image"}
