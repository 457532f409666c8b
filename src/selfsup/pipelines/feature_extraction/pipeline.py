from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.feature_extraction.nodes import extract_features


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                extract_features,
                inputs=["encoder", "images", "image_index", "params:feature_extraction", "params:pretraining.seed"],
                outputs=["features", "random_init_features"],
                name="extract_features",
            ),
        ]
    )
