"""Project pipelines: one per stage, and ``__default__`` chaining the stages."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Run on demand only: embed needs user parameters, compare reads past runs.
ON_DEMAND = ("embed", "compare")


def register_pipelines() -> dict[str, Pipeline]:
    # With `--pipelines a,b` Kedro loads only those; the default needs all the stages,
    # and Kedro orders their nodes by the catalog entries that join them.
    pipelines = find_pipelines(raise_errors=True)
    stages = [pipeline for name, pipeline in pipelines.items() if name not in ON_DEMAND]
    pipelines["__default__"] = sum(stages, Pipeline([]))
    return pipelines
