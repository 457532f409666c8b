from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.finetune.nodes import finetune_encoders


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                finetune_encoders,
                inputs=[
                    "encoder",
                    "images",
                    "image_index",
                    "params:finetune",
                    "params:augmentation",
                    "params:evaluation",
                    "params:pretraining.seed",
                ],
                outputs="finetune_metrics",
                name="finetune_encoders",
            ),
        ]
    )
