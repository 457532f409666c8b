"""The report of a text run: the images' report (metrics, training, 2-D map, confusion matrix, run,
parameters) with nearest-neighbour sentences where images have their retrieval grid and montages."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from selfsup.features import feature_matrix
from selfsup.report import figures, package_versions, run_facts
from selfsup.report.html import png_bytes, render_html

QUERIES = 8
NEIGHBOURS = 5
# The provenance table's image wording, for texts; None drops the row.
TEXT_FACTS = {
    "images (train / test)": "texts (train / test)",
    "image shape (C, H, W)": None,
    "data hash (sha256 of the image store)": "data hash (sha256 of the texts)",
    "files skipped at ingestion": "files or rows skipped at ingestion",
    "training throughput": None,
}


def nearest_sentences(
    features: pd.DataFrame, texts: pd.DataFrame, names: dict[int, str], seed: int
) -> list[tuple[dict, list[dict]]]:
    """``QUERIES`` seeded test texts, each with its ``NEIGHBOURS`` nearest training texts by cosine:
    ``{"text", "label", "similarity"}`` each (label: the class name, else the label, else None)."""
    text_of = dict(zip(texts["id"], texts["text"]))
    train, test = features[features["split"] == "train"], features[features["split"] == "test"]
    queries = test.sample(min(QUERIES, len(test)), random_state=seed)
    train_x, query_x = _unit(feature_matrix(train)), _unit(feature_matrix(queries))
    similarity = query_x @ train_x.T
    nearest = np.argsort(-similarity, axis=1)[:, :NEIGHBOURS]

    def entry(row: pd.Series, score: float | None) -> dict:
        label = None if pd.isna(row["label"]) else names.get(int(row["label"]), str(int(row["label"])))
        return {"text": text_of[row["id"]], "label": label, "similarity": score}

    return [
        (entry(query, None), [entry(train.iloc[j], float(similarity[i, j])) for j in nearest[i]])
        for i, (_, query) in enumerate(queries.iterrows())
    ]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def neighbours_html(retrieved: list[tuple[dict, list[dict]]]) -> str:
    """The retrieval section: each query, then its neighbours; a neighbour of another label is marked ✗."""
    blocks = []
    for query, neighbours in retrieved:
        rows = []
        for neighbour in neighbours:
            other = query["label"] is not None and neighbour["label"] != query["label"]
            rows.append(
                f'<tr class="{"wrong" if other else "right"}"><td>{neighbour["similarity"]:.3f}</td>'
                f"<td>{'✗' if other else ''}</td><td>{html.escape(str(neighbour['label'] or ''))}</td>"
                f'<td style="text-align:left">{html.escape(neighbour["text"])}</td></tr>'
            )
        label = f" <small>({html.escape(query['label'])})</small>" if query["label"] else ""
        blocks.append(
            f"<p><b>{html.escape(query['text'])}</b>{label}</p>"
            f"<table><tr><th>cosine</th><th></th><th>label</th><th>training text</th></tr>{''.join(rows)}</table>"
        )
    return (
        '<h2 id="neighbours">Nearest neighbours</h2><p>Test texts and their nearest training texts by cosine '
        "similarity of the SSL features; ✗ marks a neighbour with another label.</p>"
        f'<div id="nearest-sentences">{"".join(blocks)}</div>'
    )


def build_text_report(
    *,
    metrics: dict,
    training_history: pd.DataFrame,
    training_summary: dict,
    data_summary: dict,
    features: pd.DataFrame,
    test_predictions: pd.DataFrame,
    texts: pd.DataFrame,
    text_index: pd.DataFrame,
    parameters: dict,
    embedding_plot_points: int = 2000,
    seed: int = 0,
    project_folder: str = ".",
) -> tuple[str, dict[str, Figure]]:
    """The report's HTML and its figures by name."""
    collapsed = bool(training_summary.get("collapsed"))
    names = figures.class_names(text_index)
    drawn = {
        "training_curves": figures.training_curves(training_history),
        "collapse_monitor": figures.collapse_monitor(training_history, collapsed),
        "embedding_map": figures.embedding_map(features, embedding_plot_points, seed),
    }
    if len(test_predictions) and test_predictions["label"].notna().all():
        drawn["confusion_matrix"] = figures.confusion_matrix(test_predictions, names)
    retrieved = nearest_sentences(features, texts, names, seed) if {"train", "test"} <= set(features["split"]) else []
    title = f"selfsup report: {training_summary.get('method')} on {data_summary.get('dataset')}"
    environment = metrics.get("run", {}).get("environment")
    page = render_html(
        title,
        metrics,
        {name: png_bytes(figure) for name, figure in drawn.items()},
        parameters,
        _text_facts(run_facts(training_summary, data_summary, parameters, environment, project_folder)),
        package_versions(),
        collapsed,
        extra_sections=neighbours_html(retrieved) if retrieved else "",
    )
    return page, drawn


def _text_facts(facts: dict) -> dict:
    renamed = {TEXT_FACTS.get(key, key): value for key, value in facts.items()}
    return {key: value for key, value in renamed.items() if key is not None}
