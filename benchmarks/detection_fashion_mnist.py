"""Detection on Fashion-MNIST canvases: FCOS on the SSL, random-init and supervised encoders.

Runs `kedro run --env fashion_mnist --pipelines detection` on the encoder of the
environment's last run (`kedro run --env fashion_mnist` first, or `--with-run` to do it
here): 2,000 training canvases of 96×96 pixels pasted from the training images, the
fixed 500 test canvases from the test images, each encoder frozen and fine-tuned over 3
seeds (`conf/fashion_mnist/parameters_detection.yml`). The table (mean ± standard deviation
of COCO mAP and mAP50 over the seeds, 10-class and class-agnostic) goes between the markers
in RESULTS.md ("Detection on Fashion-MNIST canvases") and on stdout, with the targets:
the SSL encoder beats the random-init one on 10-class mAP in both modes by more than the
seeds' spread (its worst seed above random init's best), and the whole comparison takes at
most 20 minutes. The last line is one JSON object with every number.

    python benchmarks/detection_fashion_mnist.py              # about 20 min on 2 cores, after the environment's run
    python benchmarks/detection_fashion_mnist.py --with-run   # the environment's run first (25 min more)
    python benchmarks/detection_fashion_mnist.py --smoke      # 1,200 images, an untrained tiny encoder: under a minute
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
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit
from _environments import ROOT, outputs
from methods_fashion_mnist import write_results

MARKERS = ("<!-- detection_fashion_mnist:start -->", "<!-- detection_fashion_mnist:end -->")
BUDGET_S = 1200.0
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SMOKE = {
    "canvas_size": 64,
    "object_size": (14, 30),
    "train_canvases": 32,
    "test_canvases": 16,
    "steps": 3,
    "batch_size": 8,
    "seeds": [0],
    "supervised": {"steps": 5, "batch_size": 64, "learning_rate": 0.001},
}


def beats(runs: list[dict], mode: str) -> bool:
    """The SSL encoder's worst seed above the random-init encoder's best on 10-class mAP, in ``mode``."""
    ssl = [r["map"] for r in runs if r["encoder"] == "ssl" and r["mode"] == mode]
    random_init = [r["map"] for r in runs if r["encoder"] == "random_init" and r["mode"] == mode]
    return bool(ssl and random_init and min(ssl) > max(random_init))


def table(detection: dict, wall_s: float) -> str:
    lines = [
        "| encoder | backbone | mAP | mAP50 | mAP, class-agnostic | mAP50, class-agnostic |",
        "|---|---|---|---|---|---|",
    ]
    for encoder, modes in detection["table"].items():
        for mode, v in modes.items():
            cells = " | ".join(
                f"{v[s]:.3f} ± {v[f'{s}_std']:.3f}" for s in ("map", "map50", "map_agnostic", "map50_agnostic")
            )
            lines.append(f"| {encoder.replace('_', ' ')} | {mode} | {cells} |")
    verdicts = ", ".join(
        f"{mode}: {'yes' if beats(detection['runs'], mode) else '**no**'}" for mode in ("frozen", "finetune")
    )
    return (
        f"{detection['recipe']}; {detection['data']['train_images']} training and {detection['data']['test_images']} "
        f"test canvases. Whole comparison: {wall_s / 60:.1f} min (target ≤ {BUDGET_S / 60:.0f}).\n"
        f"SSL beats random init on 10-class mAP by more than the seeds' spread: {verdicts}.\n\n" + "\n".join(lines)
    )


def smoke() -> dict:
    """The detection stage in this process on 1,200 Fashion-MNIST images with an untrained tiny encoder."""
    import torch

    from selfsup.config import AugmentationParams, DetectionParams
    from selfsup.data.idx import read_idx_pair
    from selfsup.detection.stage import detection_stage
    from selfsup.encoder_checkpoint import encoder_checkpoint
    from selfsup.models import build_encoder

    rng = np.random.default_rng(0)
    splits = []
    for split, prefix, take in (("train", "train", 800), ("test", "t10k", 400)):
        images, labels = read_idx_pair(
            FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz", FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz"
        )
        rows = rng.choice(len(images), take, replace=False)
        splits.append((split, images[rows].reshape(take, 1, 28, 28), labels[rows]))
    images = np.concatenate([s[1] for s in splits])
    index = pd.DataFrame(
        {
            "id": [str(i) for i in range(len(images))],
            "split": np.repeat([s[0] for s in splits], [len(s[2]) for s in splits]),
            "label": pd.array(np.concatenate([s[2] for s in splits]), dtype="Int64"),
        }
    )
    config = {
        "backbone": "small_cnn",
        "in_channels": 1,
        "image_size": [28, 28],
        "backbone_params": {"widths": [8, 16, 32]},
        "mean": [0.29],
        "std": [0.35],
    }
    checkpoint = encoder_checkpoint(build_encoder(config), config, {"smoke": True})
    metrics, _, _ = detection_stage(
        checkpoint, images, index, DetectionParams(**SMOKE), AugmentationParams(), torch.device("cpu")
    )
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--with-run", action="store_true", help="kedro run --env fashion_mnist first")
    parser.add_argument("--smoke", action="store_true", help="in this process, tiny; no RESULTS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.smoke:
        detection = smoke()
    else:
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
        kedro = [sys.executable, "-m", "kedro", "run", "--env", "fashion_mnist"]
        if args.with_run:
            subprocess.run(kedro, cwd=ROOT, env=env, check=True)
        started = time.perf_counter()
        subprocess.run([*kedro, "--pipelines", "detection"], cwd=ROOT, env=env, check=True)
        detection = json.loads((outputs("fashion_mnist") / "08_reporting/detection_metrics.json").read_text())
    wall_s = time.perf_counter() - started
    text = table(detection, wall_s)
    print(text)
    if not args.smoke:
        write_results(text, MARKERS)
    met = {
        "ssl_beats_random_init_frozen": beats(detection["runs"], "frozen"),
        "ssl_beats_random_init_finetune": beats(detection["runs"], "finetune"),
        "within_budget": wall_s <= BUDGET_S,
    }
    emit({"benchmark": "detection_fashion_mnist", "smoke": args.smoke, "wall_s": wall_s, "met": met, **detection})


if __name__ == "__main__":
    main()
