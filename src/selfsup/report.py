"""Plots and the self-contained HTML report (figures inlined as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from importlib import metadata

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

from selfsup.evaluate import METRIC_KEYS, kmeans_labels  # noqa: E402
from selfsup.features import feature_matrix  # noqa: E402

ROW_TITLES = {"ssl": "SSL features", "raw_pixels": "raw pixels", "random_init": "random-init encoder"}
PACKAGES = ("selfsup", "kedro", "kedro-datasets", "torch", "torchvision", "numpy", "scikit-learn", "pandas")


def training_curves(history: pd.DataFrame) -> Figure:
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for axis, column, title in zip(
        axes, ("loss", "lr", "embedding_std"), ("training loss", "learning rate", "embedding std (collapse monitor)")
    ):
        if column in history:
            axis.plot(history["step"], history[column], linewidth=1)
        axis.set_title(title)
        axis.set_xlabel("step")
    figure.tight_layout()
    return figure


def embedding_map(features: pd.DataFrame, max_points: int, seed: int, n_clusters: int = 10) -> Figure:
    """t-SNE of the test features (a seeded subsample), coloured by label, else by k-means cluster."""
    test = features[features["split"] == "test"]
    if len(test) == 0:
        test = features
    if len(test) > max_points:
        test = test.sample(max_points, random_state=seed)
    x = feature_matrix(test)
    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    figure, axis = plt.subplots(figsize=(6, 5.5))
    labels = test["label"]
    if labels.notna().all():
        scatter = axis.scatter(points[:, 0], points[:, 1], c=labels.astype(int), cmap="tab10", s=6)
        axis.legend(*scatter.legend_elements(), title="label", fontsize=7, loc="best", markerscale=0.8)
    else:
        clusters = kmeans_labels(x, min(n_clusters, len(x) - 1))
        scatter = axis.scatter(points[:, 0], points[:, 1], c=clusters, cmap="tab10", s=6)
        axis.legend(*scatter.legend_elements(), title="k-means cluster", fontsize=7, loc="best")
    axis.set_title(f"t-SNE of {len(x)} test features")
    axis.set_xticks([])
    axis.set_yticks([])
    figure.tight_layout()
    return figure


def _png_base64(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _metrics_table(metrics: dict) -> str:
    keys = list(metrics.get("ssl", {})) or list(METRIC_KEYS)
    header = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for key, title in ROW_TITLES.items():
        row = metrics.get(key, {})
        cells = "".join(
            f"<td>{row[k]:.3f}</td>" if isinstance(row.get(k), (int, float)) else "<td>–</td>" for k in keys
        )
        rows.append(f"<tr><th>{html.escape(title)}</th>{cells}</tr>")
    return f'<table id="metrics"><tr><th></th>{header}</tr>{"".join(rows)}</table>'


def _definition_list(items: dict) -> str:
    entries = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items.items()
    )
    return f"<dl>{entries}</dl>"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child{text-align:left}img{max-width:100%}dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
dt{font-weight:600}dd{margin:0;font-family:monospace;white-space:pre-wrap}
"""


def render_html(metrics: dict, figures: dict[str, Figure], parameters: dict, run_facts: dict) -> str:
    """The whole report as one HTML string that opens offline."""
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{_png_base64(fig)}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, fig in figures.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>selfsup report</title><style>{_STYLE}</style></head>
<body>
<h1>selfsup report: {html.escape(str(run_facts.get("method", "")))} on {html.escape(str(run_facts.get("dataset", "")))}</h1>
<h2>Metrics (test split; DESIGN.md protocol)</h2>
{_metrics_table(metrics)}
<h2>Figures</h2>
{images}
<h2>Run</h2>
{_definition_list(run_facts)}
<h2>Package versions</h2>
{_definition_list(package_versions())}
<h2>Parameters</h2>
<pre>{html.escape(json.dumps(parameters, indent=2, default=str))}</pre>
</body></html>
"""
