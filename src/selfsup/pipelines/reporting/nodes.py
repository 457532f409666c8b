"""Reporting: the HTML report and its figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from selfsup.config import ReportingParams, validate
from selfsup.data.on_the_fly import OnTheFlyPlan
from selfsup.data.view_cache import ViewCache
from selfsup.encoder_checkpoint import encoder_from_checkpoint
from selfsup.report import build_report


def report(
    metrics: dict,
    training_history: pd.DataFrame,
    training_summary: dict,
    data_summary: dict,
    features: pd.DataFrame,
    test_predictions: pd.DataFrame,
    images: np.ndarray,
    image_index: pd.DataFrame,
    view_cache: ViewCache | OnTheFlyPlan,
    encoder: dict,
    parameters: dict,
) -> tuple[str, dict[str, Figure]]:
    params = validate(ReportingParams, "reporting", parameters.get("reporting"))
    html, figures = build_report(
        metrics=metrics,
        training_history=training_history,
        training_summary=training_summary,
        data_summary=data_summary,
        features=features,
        test_predictions=test_predictions,
        images=images,
        image_index=image_index,
        # On the fly: views of the first training images drawn now, as training drew its own.
        views=view_cache.bind(images).preview(6, 8),
        parameters=parameters,
        encoder=encoder_from_checkpoint(encoder),
        embedding_plot_points=params.embedding_plot_points,
        seed=params.seed,
    )
    return html, {f"{name}.png": figure for name, figure in figures.items()}
