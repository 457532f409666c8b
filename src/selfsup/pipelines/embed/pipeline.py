from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.embed.nodes import embed_folder


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline([Node(embed_folder, inputs="params:embed", outputs="embeddings", name="embed_folder")])
