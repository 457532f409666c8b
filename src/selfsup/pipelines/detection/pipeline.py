from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.detection.nodes import compare_detectors
from selfsup.pipelines.evaluation.pipeline import record_run_node


def create_pipeline(**kwargs) -> Pipeline:
    """The comparison, then ``metrics.json`` recorded again with its ``detection`` section."""
    return Pipeline(
        [
            Node(
                compare_detectors,
                inputs=["images", "image_index", "params:detection", "params:augmentation"],
                outputs=["detection_metrics", "detection_report"],
                name="compare_detectors",
            ),
            record_run_node(),
        ]
    )
