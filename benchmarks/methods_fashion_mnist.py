"""Every method at the same CPU budget on Fashion-MNIST, beside raw pixels and random init.

Each row runs in its own process (so its peak memory is its own): the
`fashion_mnist` environment's parameters, `pretraining.time_budget_s` set to
the budget, the method's defaults from `parameters_pretraining.yml`, then the
evaluation protocol on the 10,000 test images (fitted on the 60,000 train
images) through the same library calls as the pipelines. CNN methods train the
environment's small CNN on its 20×20 views; MAE and BEiT need a ViT and views
the size of the images, so they train a ViT-Tiny (4×4 patches, depth below) on
28×28 views. The table goes between the markers in RESULTS.md and on stdout;
the last line is one JSON object with every row.

Each finished row is kept in ``--rows-file`` and not run again for the same
budget (the baselines, which train nothing, for any budget), so a long
benchmark interrupted (or run in parts) resumes where it stopped; ``--fresh``
runs every row again, ``--rerun a,b`` those rows.

    python benchmarks/methods_fashion_mnist.py                 # 300 s each: 14 rows × ~8 min on 2 cores
    python benchmarks/methods_fashion_mnist.py --methods simclr,mae --budget-s 30
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from _environments import outputs

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
VIT_METHODS = {"mae", "beit"}
VIT_DEPTH = 4
BASELINES = ("raw_pixels", "random_init_small_cnn", "random_init_vit_tiny")
MARKERS = ("<!-- methods_fashion_mnist:start -->", "<!-- methods_fashion_mnist:end -->")
COLUMNS = ("knn_k20", "linear", "linear_1pct", "kmeans_nmi")


def environment_parameters() -> dict:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env="fashion_mnist")
    return loader["parameters"]


def row_params(row: str, budget_s: float, parameters: dict, method_params: dict | None = None):
    """(AugmentationParams, PretrainingParams) of a method or random-init row; ``method_params``
    override the method's own section (``pretraining.<method>``)."""
    from selfsup.config import AugmentationParams, PretrainingParams
    from selfsup.methods import METHODS

    augmentation = dict(parameters["augmentation"])
    pretraining = {**parameters["pretraining"], "time_budget_s": budget_s, "checkpoint": {"directory": None}}
    method = row.removeprefix("random_init_") if row.startswith("random_init_") else row
    uses_vit = method in VIT_METHODS or method == "vit_tiny"
    if uses_vit:
        augmentation["output_size"] = None  # a ViT's patch grid is sized for the images
        pretraining.update(backbone="vit_tiny", vit_tiny={"patch_size": 4, "depth": VIT_DEPTH, "pool": "mean"})
    if method in METHODS:  # a random-init row keeps the environment's method (SimCLR)
        pretraining["method"] = method
        pretraining[method] = {**pretraining.get(method, {}), **(method_params or {})}
    return AugmentationParams(**augmentation), PretrainingParams(**pretraining)


def peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def run_row(
    row: str,
    budget_s: float,
    cache_root: Path,
    subset: int | None,
    method_params: dict | None = None,
    parameters: dict | None = None,
) -> dict:
    """One row of the table, in this process; ``subset`` keeps the first images of each split (a smoke run),
    ``method_params`` override the method's own parameters, ``parameters`` the environment's."""
    from selfsup.data.idx import read_idx_pair
    from selfsup.data.view_cache import ensure_cache
    from selfsup.encoder_checkpoint import encoder_config, encoder_from_checkpoint, random_encoder
    from selfsup.evaluate import protocol_predictions, score_predictions
    from selfsup.features import embed
    from selfsup.tokenizer import tokenizer_codebook
    from selfsup.train import pretrain

    train_images, train_y = read_idx_pair(
        FASHION / "train-images-idx3-ubyte.gz", FASHION / "train-labels-idx1-ubyte.gz"
    )
    test_images, test_y = read_idx_pair(FASHION / "t10k-images-idx3-ubyte.gz", FASHION / "t10k-labels-idx1-ubyte.gz")
    if subset:
        train_images, train_y, test_images, test_y = (
            train_images[:subset],
            train_y[:subset],
            test_images[:subset],
            test_y[:subset],
        )
    result: dict = {"row": row}
    if row == "raw_pixels":
        train_x = train_images.reshape(len(train_images), -1).astype(np.float32) / 255.0
        test_x = test_images.reshape(len(test_images), -1).astype(np.float32) / 255.0
    else:
        augmentation, params = row_params(row, budget_s, parameters or environment_parameters(), method_params)
        size = augmentation.output_size or train_images.shape[2:]
        cache = ensure_cache(
            cache_root / f"views_{size[0]}x{size[1]}_{len(train_images)}",
            train_images,
            np.arange(len(train_images)),
            augmentation,
        )
        if row.startswith("random_init_"):
            encoder = random_encoder(encoder_config(cache.bind(train_images), params), params.seed)
        else:
            started = time.perf_counter()
            codebook = tokenizer_codebook(cache.bind(train_images), params)
            result["tokenizer_s"] = time.perf_counter() - started
            trained = pretrain(cache.bind(train_images), params, codebook=codebook)
            result["peak_rss_gb"] = peak_rss_gb()
            summary = trained.summary
            result.update(
                backbone=params.backbone,
                steps=summary["steps"],
                epochs=summary["epochs"],
                images_per_s=summary["images_per_s"],
                pretraining_s=summary["wall_time_s"],
                collapsed=summary.get("collapsed"),
            )
            encoder = encoder_from_checkpoint(trained.checkpoint)
        started = time.perf_counter()
        train_x, test_x = embed(encoder, train_images), embed(encoder, test_images)
        result["extraction_s"] = time.perf_counter() - started
    started = time.perf_counter()
    predictions, _ = protocol_predictions(train_x, train_y, test_x)
    result["metrics"] = score_predictions(predictions, test_y)
    result["evaluation_s"] = time.perf_counter() - started
    return result


def run_in_child(row: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--row", row, "--budget-s", str(args.budget_s), "--cache", str(args.cache)]
    if args.subset:
        command += ["--subset", str(args.subset)]
    finished = subprocess.run(
        command, check=True, stdout=subprocess.PIPE, text=True, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def table(rows: list[dict], budget_s: float, other_budgets: dict[float, dict[str, float]]) -> str:
    """The protocol table at ``budget_s``, with a kNN20 column for each other budget measured."""
    baselines = {r["row"]: r["metrics"] for r in rows if r["row"] in BASELINES}
    others = sorted(other_budgets)
    lines = [
        "| method | backbone | kNN20 | linear | 1 % | NMI | images/s | steps (epochs) | peak RSS GB "
        "| beats random init kNN20 | beats raw pixels kNN20 |" + "".join(f" kNN20 at {b:g} s |" for b in others),
        "|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(others),
    ]
    for r in rows:
        m = r["metrics"]
        cells = " | ".join(f"{m[c]:.3f}" for c in COLUMNS)
        if r["row"] in BASELINES:
            lines.append(f"| *{r['row'].replace('_', ' ')}* | | {cells} | | | | | |" + " |" * len(others))
            continue
        random_init = baselines[f"random_init_{r['backbone']}"]["knn_k20"]
        earlier = "".join(
            f" {other_budgets[b][r['row']]:.3f} |" if r["row"] in other_budgets[b] else " |" for b in others
        )
        lines.append(
            f"| {r['row']} | {r['backbone']} | {cells} | {r['images_per_s']:.0f} | {r['steps']} ({r['epochs']:.1f}) "
            f"| {r['peak_rss_gb']:.2f} | {'yes' if m['knn_k20'] > random_init else '**no**'} "
            f"| {'yes' if m['knn_k20'] > baselines['raw_pixels']['knn_k20'] else 'no'} |{earlier}"
        )
    return f"Budget: {budget_s:g} s of pretraining per method.\n\n" + "\n".join(lines)


def write_results(text: str, markers: tuple[str, str] = MARKERS) -> None:
    results = ROOT / "benchmarks/RESULTS.md"
    content = results.read_text()
    start, end = markers
    if start in content and end in content:
        before, rest = content.split(start, 1)
        content = before + start + "\n" + text + "\n" + end + rest.split(end, 1)[1]
    else:
        content += f"\n{start}\n{text}\n{end}\n"
    results.write_text(content)


def main() -> None:
    from selfsup.methods import METHODS

    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=300.0, help="seconds of pretraining per method")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated method names")
    parser.add_argument("--cache", type=Path, default=outputs("fashion_mnist") / "05_model_input/methods_benchmark")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: one row in this process
    parser.add_argument(
        "--subset", type=int, help="first N images of each split only (a smoke run; implies --no-write)"
    )
    parser.add_argument("--rows-file", type=Path, default=ROOT / "benchmarks/methods_fashion_mnist.jsonl")
    parser.add_argument("--fresh", action="store_true", help="run every row again")
    parser.add_argument("--rerun", default="", help="comma-separated rows to run again at this budget (after a fix)")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave RESULTS.md alone")
    args = parser.parse_args()
    if args.row:
        print(json.dumps(run_row(args.row, args.budget_s, args.cache, args.subset)))
        return
    measured = [] if args.fresh or args.subset else measured_rows(args.rows_file)
    done = finished_rows(measured, args.budget_s)
    for row in filter(None, args.rerun.split(",")):
        done.pop(row, None)
    rows = []
    for row in [*BASELINES, *args.methods.split(",")]:
        if row not in done:
            started = time.perf_counter()
            done[row] = {**run_in_child(row, args), "budget_s": args.budget_s, "when": time.strftime("%Y-%m-%d %H:%M")}
            print(f"{row}: {done[row]['metrics']} ({time.perf_counter() - started:.0f} s)", flush=True)
            if not args.subset:
                with args.rows_file.open("a") as rows_file:
                    rows_file.write(json.dumps(done[row]) + "\n")
        rows.append(done[row])
    text = table(rows, args.budget_s, knn20_at_other_budgets(measured, args.budget_s))
    print(text)
    if not (args.no_write or args.subset):
        write_results(text)
    emit({"benchmark": "methods_fashion_mnist", "budget_s": args.budget_s, "rows": rows})


def measured_rows(rows_file: Path) -> list[dict]:
    if not rows_file.exists():
        return []
    return [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]


def finished_rows(rows: list[dict], budget_s: float) -> dict[str, dict]:
    """Rows already measured at this budget, the latest of each; the baselines train nothing,
    so theirs serve every budget."""
    return {r["row"]: r for r in rows if r["budget_s"] == budget_s or r["row"] in BASELINES}


def knn20_at_other_budgets(rows: list[dict], budget_s: float) -> dict[float, dict[str, float]]:
    """{budget: {method: kNN20}} of the methods measured at budgets other than ``budget_s``, the latest of each."""
    other: dict[float, dict[str, float]] = {}
    for r in rows:
        if r["budget_s"] != budget_s and r["row"] not in BASELINES:
            other.setdefault(r["budget_s"], {})[r["row"]] = r["metrics"]["knn_k20"]
    return other


if __name__ == "__main__":
    main()
