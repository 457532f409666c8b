from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.pretraining.nodes import fit_tokenizer, pretrain_encoder


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                fit_tokenizer,
                inputs=["view_cache", "images", "params:pretraining"],
                outputs="tokenizer",
                name="fit_tokenizer",
            ),
            Node(
                pretrain_encoder,
                inputs=["view_cache", "tokenizer", "images", "params:pretraining"],
                outputs=["encoder", "training_history", "training_summary"],
                name="pretrain_encoder",
            ),
        ]
    )
