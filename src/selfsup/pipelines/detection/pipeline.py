from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.detection.nodes import compare_detectors


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                compare_detectors,
                inputs=["images", "image_index", "params:detection", "params:augmentation"],
                outputs=["detection_metrics", "detection_report"],
                name="compare_detectors",
            )
        ]
    )
