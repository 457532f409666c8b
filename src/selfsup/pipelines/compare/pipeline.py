from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.compare.nodes import compare_runs


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                compare_runs,
                inputs="metrics_runs",
                outputs=["runs_comparison", "runs_comparison_report"],
                name="compare_runs",
            )
        ]
    )
