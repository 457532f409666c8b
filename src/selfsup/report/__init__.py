"""The run report: figures, provenance and one self-contained HTML file.

``build_report`` draws every figure that the run's outputs allow (one function
each in ``figures``), inlines them as PNG in the HTML and returns them for the
``report_figures`` folder too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from selfsup.models import Encoder
from selfsup.report import figures, saliency
from selfsup.report.compare import comparison_html, comparison_table
from selfsup.report.html import png_bytes, render_html
from selfsup.report.provenance import git_commit, package_versions, run_facts

__all__ = [
    "build_report",
    "comparison_html",
    "comparison_table",
    "git_commit",
    "package_versions",
    "run_facts",
]


def build_report(
    *,
    metrics: dict,
    training_history: pd.DataFrame,
    training_summary: dict,
    data_summary: dict,
    features: pd.DataFrame,
    test_predictions: pd.DataFrame,
    images: np.ndarray,
    image_index: pd.DataFrame,
    views: np.ndarray,
    parameters: dict,
    encoder: Encoder | None = None,
    embedding_plot_points: int = 2000,
    seed: int = 0,
    project_folder: str = ".",
) -> tuple[str, dict[str, Figure]]:
    """The report's HTML and its figures by name; with the trained ``encoder``, what its features
    look at (``saliency_maps`` of a CNN, ``attention_maps`` of a ViT)."""
    collapsed = bool(training_summary.get("collapsed"))
    labelled = test_predictions["label"].notna().all() and len(test_predictions) > 0
    has_splits = {"train", "test"} <= set(features["split"])
    plans: dict[str, Callable[[], Figure]] = {
        "training_curves": lambda: figures.training_curves(training_history),
        "collapse_monitor": lambda: figures.collapse_monitor(training_history, collapsed),
        "embedding_map": lambda: figures.embedding_map(features, embedding_plot_points, seed),
    }
    if has_splits:
        plans["retrieval_grid"] = lambda: figures.retrieval_grid(images, image_index, features, seed=seed)
        if encoder is not None:
            looks, figure = (
                ("attention_maps", saliency.attention_maps)
                if saliency.is_vit(encoder)
                else ("saliency_maps", saliency.saliency_maps)
            )
            plans[looks] = lambda: figure(encoder, images, image_index, features, seed=seed)
    names = figures.class_names(image_index)
    if labelled:
        plans["confusion_matrix"] = lambda: figures.confusion_matrix(test_predictions, names)
    if len(test_predictions):
        plans["cluster_montage"] = lambda: figures.cluster_montage(images, image_index, test_predictions, names=names)
    if len(views):
        on_the_fly = (parameters.get("augmentation") or {}).get("mode") == "on_the_fly"
        plans["augmentation_preview"] = lambda: figures.augmentation_preview(
            images, image_index, views, on_the_fly=on_the_fly
        )

    drawn = {}
    for name, draw in tqdm(plans.items(), desc="report figures", unit="figure", disable=None):
        drawn[name] = draw()
    title = f"selfsup report: {training_summary.get('method')} on {data_summary.get('dataset')}"
    environment = metrics.get("run", {}).get("environment")
    html = render_html(
        title,
        metrics,
        {name: png_bytes(figure) for name, figure in drawn.items()},
        parameters,
        run_facts(training_summary, data_summary, parameters, environment, project_folder),
        package_versions(),
        collapsed,
    )
    return html, drawn
