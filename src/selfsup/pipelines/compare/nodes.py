"""Compare: every saved ``metrics_history`` version in one table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

import pandas as pd

from selfsup.report import comparison_html, comparison_table


def compare_runs(metrics_runs: dict[str, Callable[[], dict]]) -> tuple[pd.DataFrame, str]:
    """``metrics_runs`` maps ``<version>/metrics_history`` to a loader (a partitioned dataset)."""
    runs = {PurePosixPath(partition).parts[0]: load() for partition, load in metrics_runs.items()}
    table = comparison_table(runs)
    return table, comparison_html(table)
