"""DINO and SwAV on Fashion-MNIST with and without multi-crop, at the same wall-clock pretraining budget.

Each row is a row of benchmarks/methods_fashion_mnist.py (``run_row``, in its own
process): the `fashion_mnist` environment's parameters (20×20 global views from the
view cache, small CNN, bf16 autocast on CPUs with bf16 units), `pretraining.time_budget_s`
set to the budget, then the evaluation protocol on the 10,000 test images. The
multi-crop rows add `pretraining.<method>.local_crops` local views per image (the
papers' counts unless `--local-crops`; size and scale from `parameters_pretraining.yml`),
cut per batch from the training images. A multi-crop step costs more, so at the same
budget it makes fewer steps: the table shows what the wall-clock buys. The table goes
between the markers in RESULTS.md ("Multi-crop on Fashion-MNIST") and on stdout; the
last line is one JSON object with every row.

    python benchmarks/multicrop_fashion_mnist.py                 # 300 s each: 6 rows, about 35 min on 2 cores
    python benchmarks/multicrop_fashion_mnist.py --budget-s 600 --local-crops 4
    python benchmarks/multicrop_fashion_mnist.py --smoke         # 1,200 images, 3 s each, in this process: it runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from _environments import outputs
from methods_fashion_mnist import run_row, write_results

MARKERS = ("<!-- multicrop_fashion_mnist:start -->", "<!-- multicrop_fashion_mnist:end -->")
BASELINES = ("raw_pixels", "random_init_small_cnn")
METHODS = ("dino", "swav")
PAPER_LOCAL_CROPS = {"dino": 8, "swav": 6}  # DINO's default local_crops_number, SwAV's 2×224 + 6×96
COLUMNS = ("knn_k20", "linear", "linear_1pct", "kmeans_nmi")
SMOKE = {"subset": 1200, "budget_s": 3.0}


def rows(local_crops: int | None) -> list[tuple[str, str, int]]:
    """(row name, what run_row trains, local crops) of every row, baselines first."""
    plan = [(row, row, 0) for row in BASELINES]
    for method in METHODS:
        crops = PAPER_LOCAL_CROPS[method] if local_crops is None else local_crops
        plan += [(method, method, 0), (f"{method}_multicrop", method, crops)]
    return plan


def measure(name: str, trains: str, crops: int, args: argparse.Namespace) -> dict:
    """One row; in a child process of its own unless a smoke run."""
    method_params = {"local_crops": crops} if crops else None
    if args.smoke:
        result = run_row(trains, args.budget_s, args.cache, args.subset, method_params)
    else:
        command = [sys.executable, __file__, "--row", trains, "--crops", str(crops), "--budget-s", str(args.budget_s)]
        finished = subprocess.run(
            [*command, "--cache", str(args.cache)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        )
        result = json.loads(finished.stdout.strip().splitlines()[-1])
    return {**result, "row": name, "local_crops": crops}


def table(measured: list[dict], budget_s: float) -> str:
    baselines = {r["row"]: r["metrics"] for r in measured if r["row"] in BASELINES}
    plain = {r["row"]: r["metrics"]["knn_k20"] for r in measured if r["row"] in METHODS}
    lines = [
        "| method | local crops | kNN20 | linear | 1 % | NMI | images/s | steps (epochs) "
        "| kNN20 − two views | beats random init kNN20 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in measured:
        cells = " | ".join(f"{r['metrics'][c]:.3f}" for c in COLUMNS)
        if r["row"] in BASELINES:
            lines.append(f"| *{r['row'].replace('_', ' ')}* | | {cells} | | | | |")
            continue
        method = r["row"].removesuffix("_multicrop")
        knn = r["metrics"]["knn_k20"]
        gain = f"{knn - plain[method]:+.3f}" if r["local_crops"] else ""
        beats = "yes" if knn > baselines["random_init_small_cnn"]["knn_k20"] else "**no**"
        lines.append(
            f"| {method} | {r['local_crops']} | {cells} | {r['images_per_s']:.0f} "
            f"| {r['steps']} ({r['epochs']:.1f}) | {gain} | {beats} |"
        )
    return f"Budget: {budget_s:g} s of pretraining per row.\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=300.0, help="seconds of pretraining per row")
    parser.add_argument("--local-crops", type=int, help="local views per image (default: each paper's count)")
    parser.add_argument("--cache", type=Path, default=outputs("fashion_mnist") / "05_model_input/methods_benchmark")
    parser.add_argument("--smoke", action="store_true", help="1,200 images, 3 s each, in this process; no RESULTS.md")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: one row in this process
    parser.add_argument("--crops", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.subset = None
    if args.smoke:
        args.subset, args.budget_s = SMOKE["subset"], SMOKE["budget_s"]
    if args.row:
        method_params = {"local_crops": args.crops} if args.crops else None
        print(json.dumps(run_row(args.row, args.budget_s, args.cache, args.subset, method_params)))
        return
    measured = []
    for name, trains, crops in rows(args.local_crops):
        measured.append(measure(name, trains, crops, args))
        print(f"{name}: {measured[-1]['metrics']}", flush=True)
    text = table(measured, args.budget_s)
    print(text)
    if not args.smoke:
        write_results(text, MARKERS)
    emit({"benchmark": "multicrop_fashion_mnist", "budget_s": args.budget_s, "smoke": args.smoke, "rows": measured})


if __name__ == "__main__":
    main()
