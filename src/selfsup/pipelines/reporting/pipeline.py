from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.reporting.nodes import build_report


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_report,
                inputs=["metrics", "training_history", "features", "parameters"],
                outputs=["report", "report_figures"],
                name="build_report",
            )
        ]
    )
