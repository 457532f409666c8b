from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.evaluation.nodes import evaluate, record_run


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                evaluate,
                inputs=["features", "random_init_features", "images", "image_index", "params:evaluation"],
                outputs=["protocol_metrics", "test_predictions"],
                name="evaluate",
            ),
            record_run_node(),
        ]
    )


def record_run_node() -> Node:
    """``metrics.json`` from the stored rows; the detection pipeline holds the same node, which runs
    once when both pipelines run together."""
    return Node(
        record_run,
        inputs=[
            "protocol_metrics",
            "finetune_metrics",
            "detection_metrics",
            "training_summary",
            "data_summary",
            "parameters",
            "environment",
        ],
        outputs=["metrics", "metrics_history"],
        name="record_run",
    )
