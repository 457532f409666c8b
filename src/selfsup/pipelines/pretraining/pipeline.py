from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.pretraining.nodes import pretrain_encoder


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                pretrain_encoder,
                inputs=["view_cache", "params:pretraining"],
                outputs=["encoder", "training_history", "training_summary"],
                name="pretrain_encoder",
            )
        ]
    )
