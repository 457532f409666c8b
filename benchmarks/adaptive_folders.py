"""The `folder` environment, as a new user runs it, on several kinds of folder built here.

Each folder is written as PNG files (class subfolders, the environment's own 80/20
split) from data on this machine, then `kedro run --env folder --params
ingestion.path=FOLDER` runs with nothing else given, so every 'auto' parameter is
chosen from the images. One JSON line per folder: what was chosen, kNN20, linear,
the smallest label fraction, k-means NMI for SSL, raw pixels and random init, whether
SSL beats raw pixels on all of kNN20, linear and NMI, and the run's wall time.

    python benchmarks/adaptive_folders.py                  # every folder (about an hour on 2 cores)
    python benchmarks/adaptive_folders.py --only digits    # one of them

Folders (name: source, images, kind):
  digits:         scikit-learn's 8×8 digits, all 1,797: grey, tiny, hundreds
  fashion_20k:    Fashion-MNIST, 20,000 of its images: grey, small, tens of thousands
  cifar_600:      CIFAR-10 JPEG copy, 60 per class: colour, small, hundreds
  cifar_20k:      CIFAR-10 JPEG copy, 2,000 per class: colour, small, tens of thousands
  cifar_96px_3k:  CIFAR-10, 300 per class upsampled to 96×96 (bicubic): colour, larger, thousands
                  (no larger natural photographs are stored here; upsampled ones stand in)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _environments import outputs

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "data" / "01_raw" / "adaptive_folders"
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
FASHION = Path("/usr/share/datasets/fashion-mnist")
KEYS = ("knn_k20", "linear", "kmeans_nmi")


def digits() -> Iterator[tuple[str, Image.Image]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    for pixels, label in zip(bunch.images, bunch.target):
        yield str(label), Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8))


def fashion(count: int) -> Iterator[tuple[str, Image.Image]]:
    sys.path.insert(0, str(ROOT / "src"))
    from selfsup.data.idx import read_idx_pair

    images, labels = read_idx_pair(FASHION / "train-images-idx3-ubyte.gz", FASHION / "train-labels-idx1-ubyte.gz")
    for index in np.random.default_rng(0).permutation(len(images))[:count]:
        yield f"class_{labels[index]}", Image.fromarray(images[index, 0])


def cifar(per_class: int, side: int | None = None) -> Iterator[tuple[str, Image.Image]]:
    kept: dict[str, int] = {}
    with tarfile.open(CIFAR, "r|gz") as archive:
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or "train" not in parts:
                continue
            label = parts[-2]
            if kept.get(label, 0) >= per_class:
                continue
            kept[label] = kept.get(label, 0) + 1
            image = Image.open(archive.extractfile(member)).convert("RGB")
            image.load()
            yield label, image.resize((side, side), Image.Resampling.BICUBIC) if side else image


FOLDERS: dict[str, Callable[[], Iterator[tuple[str, Image.Image]]]] = {
    "digits": digits,
    "fashion_20k": lambda: fashion(20_000),
    "cifar_600": lambda: cifar(60),
    "cifar_20k": lambda: cifar(2_000),
    "cifar_96px_3k": lambda: cifar(300, side=96),
}


def build(name: str) -> Path:
    folder = WORK / name
    if folder.exists():
        return folder
    partial = folder.with_name(f".{name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    for index, (label, image) in enumerate(FOLDERS[name]()):
        (partial / label).mkdir(parents=True, exist_ok=True)
        image.save(partial / label / f"{index:06d}.png")
    partial.rename(folder)
    return folder


def run(name: str, folder: Path) -> dict:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--env", "folder", "--params", f"ingestion.path={folder}"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    wall = time.perf_counter() - started
    metrics = json.loads((outputs("folder") / "08_reporting/metrics.json").read_text())
    parameters = {
        "channels": metrics["run"]["shape"][0],
        "image_size": metrics["run"]["shape"][1:],
        "batch_size": metrics["run"]["batch_size"],
        "steps": metrics["run"]["steps"],
        "images_per_s": round(metrics["run"]["images_per_s"]),
    }
    fractions = [k for k in metrics["ssl"] if k.startswith("linear_") and k.endswith("pct")]
    smallest_fraction = min(fractions, key=lambda k: int(k.removeprefix("linear_").removesuffix("pct")), default=None)
    rows = {
        row: {k: metrics[row][k] for k in (*KEYS, smallest_fraction) if k in metrics[row]}
        for row in ("ssl", "raw_pixels", "random_init")
    }
    return {
        "benchmark": "adaptive_folders",
        "folder": name,
        "images": metrics["run"]["images"],
        "chosen": parameters,
        **rows,
        "beats_raw_pixels": all(metrics["ssl"][k] > metrics["raw_pixels"][k] for k in KEYS),
        "kedro_run_wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=sorted(FOLDERS), action="append", help="run these folders only")
    args = parser.parse_args()
    for name in args.only or FOLDERS:
        print(json.dumps(run(name, build(name))), flush=True)


if __name__ == "__main__":
    main()
