"""The self-contained HTML report: figures inlined as base64 PNG, no external resource."""

from __future__ import annotations

import base64
import html
import io
import json

from matplotlib.figure import Figure

from selfsup.evaluate import METRIC_KEYS

ROW_TITLES = {
    "ssl": "SSL features",
    "raw_pixels": "raw pixels",
    "tfidf": "TF-IDF",
    "random_init": "random-init encoder",
}

# Section title, then (figure name, caption) in reading order; a figure absent from a run is left out.
SECTIONS = (
    (
        "Training",
        (
            ("training_curves", "Loss and learning rate (linear warmup, then cosine decay) at every step."),
            (
                "collapse_monitor",
                "Spread of the L2-normalised encoder features across a batch, sqrt(d) × mean "
                "per-dimension std, measured every 25 steps. Near 0 means every image gets the same features.",
            ),
        ),
    ),
    (
        "Features",
        (
            ("embedding_map", "The test features in 2-D, coloured by label (or by k-means cluster when unlabelled)."),
            ("retrieval_grid", "Nearest-neighbour retrieval: each test query and its 8 nearest training images."),
            (
                "saliency_maps",
                "What the features look at: Grad-CAM on the encoder's last feature map for the cosine similarity "
                "of each retrieval query to its nearest training image, and of that image to the query "
                "(red: where the image raises the similarity most).",
            ),
            (
                "attention_maps",
                "What the features look at: the last transformer block's attention from the [CLS] token to "
                "each patch of each retrieval query, one map per head (red: most attention).",
            ),
            ("confusion_matrix", "Linear probe (all train labels) on the test split: counts, shaded by row rate."),
            ("cluster_montage", "k-means on the test features: the first images of each cluster."),
        ),
    ),
    ("Data", (("augmentation_preview", "Training images and the augmented views cached for pretraining."),)),
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child{text-align:left}tr.ssl{background:#eef5ff}figure{margin:1.5em 0}img{max-width:100%}
figcaption{color:#555;font-size:.9em}dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
dt{font-weight:600}dd{margin:0;font-family:monospace;white-space:pre-wrap;word-break:break-all}
.alert{background:#fde8e8;border:2px solid #d62728;padding:.8em 1em;font-weight:600}
nav a{margin-right:1em}
#parameters td{text-align:left;font-family:monospace}
"""


def png_bytes(figure: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def metrics_table(metrics: dict) -> str:
    keys = list(metrics.get("ssl", {})) or list(METRIC_KEYS)
    header = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for key, title in ROW_TITLES.items():
        if key not in metrics:  # a run has one input baseline: raw pixels for images, TF-IDF for texts
            continue
        row = metrics[key]
        cells = "".join(
            f"<td>{row[k]:.3f}</td>" if isinstance(row.get(k), (int, float)) else "<td>–</td>" for k in keys
        )
        rows.append(f'<tr class="{key}"><th>{html.escape(title)}</th>{cells}</tr>')
    return f'<table id="metrics"><tr><th>features</th>{header}</tr>{"".join(rows)}</table>'


def finetune_note(metrics: dict) -> str:
    """What the ``finetune_*`` columns are, when the run has them."""
    if not any(key.startswith("finetune_") for key in metrics.get("ssl", {})):
        return ""
    return (
        "<p><code>finetune_*</code>: the whole encoder and a linear head fine-tuned on that fraction of the "
        "training labels (the probes' subsets), scored on the test split; raw pixels have no encoder to "
        "fine-tune (–).</p>"
    )


def definition_list(items: dict, element_id: str) -> str:
    entries = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items.items())
    return f'<dl id="{element_id}">{entries}</dl>'


def flat_parameters(parameters: dict, prefix: str = "") -> dict[str, str]:
    """``{"pretraining.simclr.temperature": "0.5", ...}``: each value as ``--params`` takes it."""
    flat = {}
    for key, value in parameters.items():
        if isinstance(value, dict) and value:
            flat.update(flat_parameters(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value, default=str)
    return flat


def parameters_section(parameters: dict, environment: str | None) -> str:
    """Every resolved parameter in a collapsible table, with how to run them again."""
    flat = flat_parameters(parameters)
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in flat.items())
    return f"""<h2 id="parameters-section">Parameters</h2>
<p>Every parameter as this run resolved it: <code>conf/base</code>, the environment's files,
<code>--params</code> and the values chosen for <code>auto</code> applied (also in <code>metrics.json</code>,
<code>run.parameters</code>). To run it again: check out the git commit above and run
<code>kedro run --env {html.escape(str(environment))}</code>, giving any value that differs as
<code>--params name=value</code>.</p>
<details><summary>{len(flat)} parameters</summary><table id="parameters">{rows}</table></details>"""


def figure_element(name: str, caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="fig-{name}"><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render_html(
    title: str,
    metrics: dict,
    pngs: dict[str, bytes],
    parameters: dict,
    facts: dict,
    versions: dict,
    collapsed: bool,
    extra_sections: str = "",
) -> str:
    """The whole report as one HTML string that opens offline; ``extra_sections`` (HTML) follow the figures."""
    alert = (
        '<p class="alert" id="collapse-alert">Representation collapse: the embedding spread fell below the '
        "threshold; the features barely tell images apart. See the collapse monitor.</p>"
        if collapsed
        else ""
    )
    sections = []
    for section, figures in SECTIONS:
        present = [figure_element(name, caption, pngs[name]) for name, caption in figures if name in pngs]
        if present:
            sections.append(f'<h2 id="{section.lower()}">{section}</h2>{"".join(present)}')
    nav = " ".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in [("metrics-section", "Metrics")]
        + [(s.lower(), s) for s, figures in SECTIONS if any(name in pngs for name, _ in figures)]
        + [("run", "Run"), ("parameters-section", "Parameters")]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<nav>{nav}</nav>
{alert}
<h2 id="metrics-section">Metrics (test split; the evaluation protocol)</h2>
<p>The same protocol on the SSL features and on two baselines: the raw input (raw pixels; TF-IDF for
texts) and an untrained encoder of the same architecture. A number without its baselines is not a result.</p>
{metrics_table(metrics)}
{finetune_note(metrics)}
{"".join(sections)}
{extra_sections}
<h2 id="run">Run</h2>
{definition_list(facts, "provenance")}
<h2>Package versions</h2>
{definition_list(versions, "versions")}
{parameters_section(parameters, metrics.get("run", {}).get("environment"))}
</body></html>
"""
