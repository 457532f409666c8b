"""Reporting: the HTML report and its figures."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from selfsup.config import ReportingParams, validate
from selfsup.report import embedding_map, render_html, training_curves


def build_report(
    metrics: dict, training_history: pd.DataFrame, features: pd.DataFrame, parameters: dict
) -> tuple[str, dict[str, Figure]]:
    params = validate(ReportingParams, "reporting", parameters.get("reporting"))
    figures = {
        "training_curves": training_curves(training_history),
        "embedding_map": embedding_map(features, params.embedding_plot_points, params.seed),
    }
    html = render_html(metrics, figures, parameters, metrics.get("run", {}))
    return html, {f"{name}.png": figure for name, figure in figures.items()}
