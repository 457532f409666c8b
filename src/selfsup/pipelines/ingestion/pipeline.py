from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.ingestion.nodes import ingest


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                ingest,
                inputs="params:ingestion",
                outputs=["images", "image_index", "data_summary"],
                name="ingest",
            )
        ]
    )
