"""The text chain, the image stages' counterpart: ``kedro run --env text_wordnet`` runs it as ``__default__``
(``selfsup.pipeline_registry``), ``kedro run --pipelines text`` anywhere."""

from kedro.pipeline import Node, Pipeline

from selfsup.pipelines.text.nodes import (
    evaluate_texts,
    extract_text_features,
    fit_text_tokenizer,
    ingest_texts,
    pretrain_text_encoder,
    record_text_run,
    report_texts,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(ingest_texts, "params:ingestion", ["texts", "text_index", "data_summary"], name="ingest_texts"),
            Node(
                fit_text_tokenizer,
                ["texts", "text_index", "params:pretraining"],
                "wordpiece",
                name="fit_wordpiece",
            ),
            Node(
                pretrain_text_encoder,
                ["texts", "text_index", "wordpiece", "params:pretraining"],
                ["encoder", "training_history", "training_summary"],
                name="pretrain_text_encoder",
            ),
            Node(
                extract_text_features,
                ["encoder", "texts", "text_index", "wordpiece", "params:feature_extraction", "params:pretraining.seed"],
                ["features", "random_init_features"],
                name="extract_text_features",
            ),
            Node(
                evaluate_texts,
                ["features", "random_init_features", "texts", "text_index", "params:evaluation"],
                ["protocol_metrics", "test_predictions"],
                name="evaluate_texts",
            ),
            Node(
                record_text_run,
                ["protocol_metrics", "training_summary", "data_summary", "parameters", "environment"],
                ["metrics", "metrics_history"],
                name="record_text_run",
            ),
            Node(
                report_texts,
                [
                    "metrics",
                    "training_history",
                    "training_summary",
                    "data_summary",
                    "features",
                    "test_predictions",
                    "texts",
                    "text_index",
                    "parameters",
                ],
                ["report", "report_figures"],
                name="build_text_report",
            ),
        ]
    )
