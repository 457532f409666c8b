"""Project pipelines: one per stage, and ``__default__`` chaining them all."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    # With `--pipelines a,b` Kedro loads only those; the default needs them all,
    # and Kedro orders their nodes by the catalog entries that join them.
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
