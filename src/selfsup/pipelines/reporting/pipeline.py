from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.reporting.nodes import report


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                report,
                inputs=[
                    "metrics",
                    "training_history",
                    "training_summary",
                    "data_summary",
                    "features",
                    "test_predictions",
                    "images",
                    "image_index",
                    "view_cache",
                    "encoder",
                    "parameters",
                ],
                outputs=["report", "report_figures"],
                name="build_report",
            )
        ]
    )
