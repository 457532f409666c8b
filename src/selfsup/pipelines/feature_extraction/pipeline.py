from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.feature_extraction.nodes import extract_features, extract_random_init_features


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                extract_features,
                inputs=["encoder", "images", "image_index", "params:feature_extraction"],
                outputs="features",
                name="extract_features",
            ),
            Node(
                extract_random_init_features,
                inputs=["encoder", "images", "image_index", "params:feature_extraction", "params:pretraining.seed"],
                outputs="random_init_features",
                name="extract_random_init_features",
            ),
        ]
    )
