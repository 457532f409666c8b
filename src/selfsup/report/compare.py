"""Several runs' metrics side by side, grouped by environment."""

from __future__ import annotations

import html
import math

import pandas as pd

from selfsup.report.html import ROW_TITLES

RUN_FACTS = ("method", "backbone", "dataset", "steps", "epochs", "wall_time_s", "collapsed")


def comparison_table(runs: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """One row per run, keyed by ``(environment, saved version)``, each environment's oldest first: run
    facts, then every protocol number as ``<features>.<metric>`` for the SSL features and both baselines."""
    if not runs:
        raise ValueError("no saved runs to compare: run `kedro run` (it saves metrics_history) first")
    records = []
    for (environment, version), metrics in sorted(runs.items()):
        run = metrics.get("run", {})
        record = {"environment": environment, "run": version, **{fact: run.get(fact) for fact in RUN_FACTS}}
        for row in ROW_TITLES:
            for key, value in metrics.get(row, {}).items():
                record[f"{row}.{key}"] = value
        records.append(record)
    return pd.DataFrame.from_records(records)


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return html.escape(str(value))


def comparison_html(table: pd.DataFrame) -> str:
    """A page with the comparison table; the best SSL value of each metric within each environment is in bold
    (environments differ in their data, so their numbers are not compared with each other)."""
    metric_columns = [c for c in table.columns if c.startswith("ssl.")]
    best = table.groupby("environment")[metric_columns].transform("max")
    header = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = []
    for position, record in table.iterrows():
        cells = []
        for column, value in record.items():
            text = _cell(value)
            bold = column in best and value == best.at[position, column]
            cells.append(f"<td><b>{text}</b></td>" if bold else f"<td>{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    environments = table["environment"].nunique()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>selfsup: runs compared</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right;font-size:.85em}}</style></head>
<body><h1>selfsup: {len(table)} runs of {environments} environment{"s" * (environments != 1)} compared</h1>
<p>One row per saved run (<code>metrics_history</code> versions of every environment under <code>data/</code>),
grouped by environment, oldest first. Columns <code>ssl.*</code> are the SSL features; <code>raw_pixels.*</code>
and <code>random_init.*</code> are the baselines of the same run. Bold: the best SSL value of each metric
within its environment.</p>
<table id="comparison"><tr>{header}</tr>{"".join(rows)}</table>
</body></html>
"""
