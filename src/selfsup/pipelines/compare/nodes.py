"""Compare: every environment's saved ``metrics_history`` versions in one table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

import pandas as pd

from selfsup.report import comparison_html, comparison_table

# Runs directly under data/ are the base environment's; data/<name>/ holds environment <name>'s.
BASE_ENVIRONMENT = "base"


def saved_run(partition: str) -> tuple[str, str]:
    """``(environment, version)`` of a partition ``[<environment>/]08_reporting/metrics_history.json/<version>``."""
    parts = PurePosixPath(partition).parts
    return "/".join(parts[:-3]) or BASE_ENVIRONMENT, parts[-1]


def compare_runs(metrics_runs: dict[str, Callable[[], dict]]) -> tuple[pd.DataFrame, str]:
    """``metrics_runs`` maps each saved version's partition under data/ to its loader (a partitioned dataset)."""
    runs = {saved_run(partition): load() for partition, load in metrics_runs.items()}
    table = comparison_table(runs)
    return table, comparison_html(table)
