from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.evaluation.nodes import evaluate


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                evaluate,
                inputs=[
                    "features",
                    "random_init_features",
                    "images",
                    "image_index",
                    "training_summary",
                    "data_summary",
                    "params:evaluation",
                ],
                outputs=["metrics", "metrics_history", "test_predictions"],
                name="evaluate",
            )
        ]
    )
