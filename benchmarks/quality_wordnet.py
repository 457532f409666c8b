"""Text quality benchmark: `kedro run --env text_wordnet` with each text recipe, against issue 19's targets.

For each recipe (`--recipes` picks): ``default``, the environment as it is (SimCSE on the bag of
token embeddings), and ``mlm``, masked language modelling on the Transformer with the vocabulary
and batch it was measured with, runs the environment (unless --skip-run, which re-checks the last
run's outputs) and prints one JSON line: the SSL, TF-IDF and random-init rows, the wall times, and
whether each target holds: the SSL row beats the random-init encoder on every metric, beats TF-IDF
on kNN20 and k-means NMI, and its linear probe is within 0.03 of TF-IDF's; pretraining at most 15
minutes and the whole run at most 25 (2 CPU cores).

    python benchmarks/quality_wordnet.py                     # ~2 × 16 minutes on 2 cores
    python benchmarks/quality_wordnet.py --recipes default   # one recipe
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _environments import outputs

ROOT = Path(__file__).resolve().parents[1]
LINEAR_MARGIN = 0.03
PRETRAINING_LIMIT_S, RUN_LIMIT_S = 15 * 60, 25 * 60
# Each recipe's --params on top of the environment.
RECIPES = {
    "default": None,
    "mlm": "pretraining.method=mlm,pretraining.backbone=text_transformer,pretraining.batch_size=128,"
    "pretraining.wordpiece.vocab_size=8000",
}


def targets_met(metrics: dict, run_wall_s: float | None) -> dict[str, bool]:
    ssl, tfidf, random_init = metrics["ssl"], metrics["tfidf"], metrics["random_init"]
    return {
        "beats_random_init_everywhere": all(ssl[key] > random_init[key] for key in ssl),
        "knn_k20_above_tfidf": ssl["knn_k20"] > tfidf["knn_k20"],
        "kmeans_nmi_above_tfidf": ssl["kmeans_nmi"] > tfidf["kmeans_nmi"],
        "linear_within_0.03_of_tfidf": ssl["linear"] >= tfidf["linear"] - LINEAR_MARGIN,
        "pretraining_within_15_min": metrics["run"]["wall_time_s"] <= PRETRAINING_LIMIT_S,
        "run_within_25_min": run_wall_s is None or run_wall_s <= RUN_LIMIT_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--skip-run", action="store_true", help="only re-check the last run's outputs")
    args = parser.parse_args()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    for recipe in [None] if args.skip_run else args.recipes:
        run_wall = None
        if recipe is not None:
            started = time.perf_counter()
            command = [sys.executable, "-m", "kedro", "run", "--env", "text_wordnet"]
            if RECIPES[recipe]:
                command += ["--params", RECIPES[recipe]]
            subprocess.run(command, cwd=ROOT, env=env, check=True)
            run_wall = time.perf_counter() - started
        metrics = json.loads((outputs("text_wordnet") / "08_reporting/metrics.json").read_text())
        result = {
            "benchmark": "quality_wordnet",
            "recipe": recipe,
            "method": metrics["run"]["method"],
            "backbone": metrics["run"]["backbone"],
            "ssl": metrics["ssl"],
            "tfidf": metrics["tfidf"],
            "random_init": metrics["random_init"],
            "met": targets_met(metrics, run_wall),
            "pretraining_wall_s": metrics["run"]["wall_time_s"],
            "steps": metrics["run"]["steps"],
            "kedro_run_wall_s": run_wall,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
