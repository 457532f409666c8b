"""Jigsaw's permutation set against the paper's Algorithm 1 (benchmarks/jigsaw_permutations.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT


def test_max_min_selection_keeps_pairs_further_apart_than_the_papers_max_sum():
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "benchmarks" / "jigsaw_permutations.py")],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )
    line = json.loads(result.stdout)
    ours, paper = line["selfsup_max_min"], line["paper_max_sum"]
    assert ours["min_distance"] > paper["min_distance"]
    assert abs(ours["mean_distance"] - paper["mean_distance"]) < 0.1
