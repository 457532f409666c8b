"""Project pipelines: one per stage, and ``__default__`` chaining them all."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

STAGES = ("ingestion", "augmentation", "pretraining", "feature_extraction", "evaluation", "reporting")


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = find_pipelines()
    pipelines["__default__"] = sum((pipelines[name] for name in STAGES), Pipeline([]))
    return pipelines
