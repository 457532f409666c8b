"""Project pipelines: one per stage, ``__default__`` chaining the stages of the run's modality.

An environment whose ``globals.yml`` says ``modality: text`` (``conf/text_wordnet``) runs the
text chain (``selfsup.pipelines.text``) by default; every other runs the image stages.
"""

import os
from pathlib import Path

import yaml
from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline
from kedro.utils import find_kedro_project

# Run on demand only: embed needs user parameters, compare reads past runs, detection trains detectors
# on a finished run's encoder.
ON_DEMAND = ("embed", "compare", "detection")
TEXT = "text"


def environment_modality(environment: str | None) -> str:
    """``modality`` of the environment's ``conf/<environment>/globals.yml``: ``image`` unless it says ``text``."""
    project = find_kedro_project(Path.cwd())
    if not environment or project is None:
        return "image"
    globals_file = project / "conf" / environment / "globals.yml"
    values = yaml.safe_load(globals_file.read_text()) if globals_file.is_file() else None
    return (values or {}).get("modality", "image")


def register_pipelines() -> dict[str, Pipeline]:
    # With `--pipelines a,b` Kedro loads only those; the default needs all the stages,
    # and Kedro orders their nodes by the catalog entries that join them.
    pipelines = find_pipelines(raise_errors=True)
    stages = [pipeline for name, pipeline in pipelines.items() if name not in (*ON_DEMAND, TEXT)]
    # Kedro names the environment of `kedro run --env NAME` to the registry through KEDRO_ENV (selfsup.cli).
    text_run = environment_modality(os.environ.get("KEDRO_ENV")) == "text"
    pipelines["__default__"] = pipelines[TEXT] if text_run else sum(stages, Pipeline([]))
    return pipelines
