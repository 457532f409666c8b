from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.augmentation.nodes import request_view_cache


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                request_view_cache,
                inputs=["images", "image_index", "params:augmentation"],
                outputs="view_cache",
                name="build_view_cache",
            )
        ]
    )
