"""The GPU recipe for CIFAR-10: ResNet-18 (CIFAR stem), SimCLR and BYOL, 200 epochs, batch 512 (issue 17).

The recipe of lightly's CIFAR-10 benchmark, whose published kNN accuracies are
the anchors (ResNet-18, 200 epochs, batch 512: SimCLR 0.83, BYOL 0.84), run
with the project's own parts:

- model: ``resnet18`` with ``small_image_stem`` (3×3 stride-1 first conv, no
  max-pool); the 512-d pooled features are what kNN sees.
- methods: ``selfsup.methods`` with their default hyperparameters, which are
  lightly's here: SimCLR's projector 512→512→128 and NT-Xent at temperature
  0.5; BYOL's projector 512→1024→256 and predictor 256→1024→256. BYOL's target
  momentum starts at 0.99 and rises to 1 on a cosine (lightly keeps 0.99).
- optimizer: ``selfsup.optimizer``'s SGD, momentum 0.9 (Nesterov), weight decay
  5e-4 (not on biases and norm layers, unlike lightly), learning rate
  0.06 × batch / 128 = 0.24 at batch 512, lightly's linear scaling; cosine
  decay to 0 over every step, no warmup (lightly: cosine per epoch).
- precision: bf16 autocast on CUDA (``selfsup.devices``), channels-last; each step is ``selfsup.train.train_step``.
- views: generated on the GPU for every batch (``selfsup.data.on_the_fly`` and
  ``selfsup.augment``): random resized crop to 32 at scale 0.08–1, horizontal
  flip 0.5, colour jitter brightness/contrast/saturation 0.4 with p 0.8,
  grayscale 0.2, no blur at 32 px. SimCLR's CIFAR-10 jitter also shifts hue by
  up to 0.1; ``selfsup.augment`` has no hue operation, so this recipe does not.
- evaluation: every 10 epochs and at the end, the train and test images are
  embedded (``selfsup.features.embed``: unit-length backbone features, eval
  mode), and the test split is classified by lightly's kNN (InstDisc's: the
  200 most cosine-similar training features each vote for their class with
  weight exp(similarity / 0.1)). At the end, also the project's kNN
  (``selfsup.evaluate``, k = 20, 1/distance votes). lightly reports the best
  kNN accuracy over epochs; ``knn_accuracy`` here is the final one, the best
  is ``knn_accuracy_best``.

Data: ``--data``, read by ``selfsup.data`` (``ingestion.dataset: cifar10``): by
default the CIFAR-10 JPEG archive ``../shared/datasets/cifar10-jpeg.tar.gz``
(from the repository root; ``{train,test}/<class>/NNNN.jpg``), decoded in
memory, nothing extracted; the official ``cifar-10-python.tar.gz`` is read too.
JPEG-decoded pixels are not the exact originals: accuracies on them are close
to, not identical with, those on the official arrays.

Prints one JSON line per method; the kNN accuracies go to stderr as they are
measured. ``images_per_s`` counts training images (two views each) over the
training time alone, kNN evaluations excluded (``minutes_per_epoch`` likewise;
``wall_minutes`` includes them). ``--smoke`` trains on 80 images (the first 8 of
each class of the train split, the test split keeping 4 of each, or random
images when there is nothing at ``--data``, as ``data`` says) for 1 epoch at
batch 16 on the CPU, kNN with k = 80: its numbers mean nothing.

    python benchmarks/gpu_cifar10.py                          # on a CUDA machine, SimCLR then BYOL
    python benchmarks/gpu_cifar10.py --methods byol --epochs 100
    python benchmarks/gpu_cifar10.py --smoke                  # tiny run on CPU: checks that the script runs
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, synchronise

from selfsup.config import AugmentationParams, IngestionParams, PretrainingParams
from selfsup.data import ImageSet, load_image_set
from selfsup.data.on_the_fly import OnTheFlyViews
from selfsup.devices import uses_bf16
from selfsup.encoder_checkpoint import encoder_config
from selfsup.evaluate import knn_accuracy
from selfsup.features import embed
from selfsup.methods import build_method
from selfsup.models import build_encoder
from selfsup.optimizer import make_optimizer
from selfsup.schedule import warmup_cosine
from selfsup.train import seed_everything, train_step

# ../shared/datasets from the repository root
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
METHODS = ("simclr", "byol")
ANCHOR = {"simclr": 0.83, "byol": 0.84}
EPOCHS, BATCH, KNN_EVERY = 200, 512, 10
KNN_K, KNN_TEMPERATURE, PROJECT_KNN_K = 200, 0.1, 20
EMBED_BATCH = 1024
AUGMENT = AugmentationParams(
    mode="on_the_fly",
    crop_scale=(0.08, 1.0),
    max_translate=0.0,
    hflip_p=0.5,
    brightness=0.4,
    contrast=0.4,
    saturation=0.4,
    color_jitter_p=0.8,
    grayscale_p=0.2,
    blur_p=0.0,
    noise_std=0.0,
)
# --smoke: few enough ResNet-18 steps for 2 CPU cores to run both methods in well under a minute.
SMOKE_PER_CLASS = {"train": 8, "test": 4}
SMOKE_BATCH = 16


def learning_rate(batch_size: int) -> float:
    return 0.06 * batch_size / 128


@dataclass(frozen=True)
class LabelledImages:
    images: np.ndarray  # uint8 (N, 3, 32, 32)
    labels: np.ndarray  # int64 (N,)


def load_cifar10(path: Path, smoke: bool) -> tuple[dict[str, LabelledImages], str]:
    """Both splits and where they came from; with ``smoke`` a few images of each class, or
    random images when there is nothing at ``path``."""
    if path.exists():
        params = IngestionParams(dataset="cifar10", path=str(path), workers=os.cpu_count() or 1)
        return split_image_set(load_image_set(params), SMOKE_PER_CLASS if smoke else None), f"cifar10 {path.name}"
    if not smoke:
        sys.exit(f"no CIFAR-10 at {path}: pass --data")
    return synthetic_splits(), "synthetic: random uint8 32x32 RGB images, random labels"


def split_image_set(image_set: ImageSet, per_class: dict[str, int] | None) -> dict[str, LabelledImages]:
    """The train and test images and labels; ``per_class``: only the first that many of each class."""
    splits = {}
    for split in ("train", "test"):
        rows = image_set.index[image_set.index["split"] == split]
        if per_class is not None:
            rows = rows.groupby("label").head(per_class[split])
        positions = rows.index.to_numpy()  # the index's row labels are the images' positions
        splits[split] = LabelledImages(image_set.images[positions], rows["label"].to_numpy(np.int64))
    return splits


def synthetic_splits() -> dict[str, LabelledImages]:
    rng = np.random.default_rng(0)
    splits = {}
    for split, per_class in SMOKE_PER_CLASS.items():
        n = 10 * per_class
        splits[split] = LabelledImages(rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), np.arange(n) % 10)
    return splits


def recipe(method: str, epochs: int, batch_size: int, device: torch.device) -> PretrainingParams:
    return PretrainingParams(
        method=method,
        backbone="resnet18",
        resnet18={"small_image_stem": True},
        epochs=epochs,
        batch_size=batch_size,
        optimizer="sgd",
        learning_rate=learning_rate(batch_size),
        weight_decay=5e-4,
        warmup_epochs=0,
        device=device.type,
    )


def weighted_knn_accuracy(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    k: int,
    temperature: float,
    chunk: int = 1024,
) -> float:
    """Accuracy of the kNN of lightly's benchmarks on unit-length features: each of the k most
    cosine-similar training rows votes for its class with weight exp(similarity / temperature)."""
    n_classes = int(train_labels.max()) + 1
    correct = 0
    for start in range(0, len(test), chunk):
        similarity, neighbours = (test[start : start + chunk] @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(similarity), n_classes, device=similarity.device)
        votes.scatter_add_(1, train_labels[neighbours], (similarity / temperature).exp())
        correct += int((votes.argmax(dim=1) == test_labels[start : start + chunk]).sum())
    return correct / len(test)


class KNNEvaluation:
    """kNN accuracies of an encoder's features of the test split against the train split."""

    def __init__(self, splits: dict[str, LabelledImages], device: torch.device):
        self.splits, self.device = splits, device
        self.k = min(KNN_K, len(splits["train"].labels))
        self.labels = {split: torch.from_numpy(s.labels).to(device) for split, s in splits.items()}

    def features(self, encoder) -> dict[str, np.ndarray]:
        return {split: embed(encoder, s.images, EMBED_BATCH, self.device) for split, s in self.splits.items()}

    def lightly_accuracy(self, features: dict[str, np.ndarray]) -> float:
        train, test = (torch.from_numpy(features[split]).to(self.device) for split in ("train", "test"))
        return weighted_knn_accuracy(train, self.labels["train"], test, self.labels["test"], self.k, KNN_TEMPERATURE)

    def project_accuracy(self, features: dict[str, np.ndarray]) -> float:
        train, test = self.splits["train"], self.splits["test"]
        return knn_accuracy(features["train"], train.labels, features["test"], test.labels, PROJECT_KNN_K)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pretrain_and_track(params: PretrainingParams, splits: dict[str, LabelledImages], device: torch.device) -> dict:
    """Pretrain ``params.method`` on the train split's on-the-fly views, with a kNN evaluation
    every ``KNN_EVERY`` epochs and after the last; the measurements of the JSON line."""
    views = OnTheFlyViews(splits["train"].images, np.arange(len(splits["train"].labels)), AUGMENT, key="cifar10")
    seed_everything(params.seed)
    method = build_method(build_encoder(encoder_config(views, params)), params)
    method = method.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(method, params)
    steps_per_epoch = len(views) // params.batch_size
    total_steps = steps_per_epoch * params.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, 0, total_steps))
    use_bf16 = uses_bf16(device, params)
    order = torch.Generator().manual_seed(params.seed)
    evaluation = KNNEvaluation(splits, device)
    history, training_s, step, started = [], 0.0, 0, time.perf_counter()
    for epoch in range(params.epochs):
        epoch_started = time.perf_counter()
        method.train()
        batches = views.epoch_batches(
            method.n_views, params.batch_size, order, device, torch.channels_last, epoch, local_crops=method.local_crops
        )
        for batch in batches:
            loss, _ = train_step(method, method, optimizer, batch, use_bf16, params, step, epoch, None)
            schedule.step()
            method.on_step_end(step, total_steps)
            step += 1
        synchronise(device)
        training_s += time.perf_counter() - epoch_started
        if (epoch + 1) % KNN_EVERY == 0 or epoch + 1 == params.epochs:
            last_features = evaluation.features(method.encoder)
            history.append([epoch + 1, evaluation.lightly_accuracy(last_features)])
            log(
                f"{params.method} epoch {epoch + 1}/{params.epochs}: loss {loss:.4f}, "
                f"kNN{evaluation.k} {history[-1][1]:.4f}, {training_s / 60 / (epoch + 1):.2f} min/epoch"
            )
    return {
        "knn_accuracy": history[-1][1],
        "knn_accuracy_best": max(accuracy for _, accuracy in history),
        "knn_history": history,
        "knn_k": evaluation.k,
        "knn_k20_accuracy": evaluation.project_accuracy(last_features),  # the last epoch always evaluates
        "images_per_s": step * params.batch_size / training_s,
        "minutes_per_epoch": training_s / 60 / params.epochs,
        "wall_minutes": (time.perf_counter() - started) / 60,
        "precision": "bf16" if use_bf16 else "fp32",
    }


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the CIFAR-10 JPEG archive")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--epochs", type=int, help=f"default {EPOCHS}; 1 with --smoke")
    parser.add_argument("--smoke", action="store_true", help="a few images, 1 epoch, on CPU")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --smoke on CPU")
    device = torch.device("cpu" if args.smoke else "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every batch has the same shape
    epochs = args.epochs or (1 if args.smoke else EPOCHS)
    batch_size = SMOKE_BATCH if args.smoke else BATCH
    splits, source = load_cifar10(args.data, args.smoke)
    for method in args.methods:
        params = recipe(method, epochs, batch_size, device)
        measured = pretrain_and_track(params, splits, device)
        emit(
            {
                "benchmark": "gpu_cifar10",
                "method": method,
                "backbone": "resnet18",
                "small_image_stem": True,
                "epochs": epochs,
                "batch_size": batch_size,
                "learning_rate": params.learning_rate,
                **measured,
                "knn_temperature": KNN_TEMPERATURE,
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "data": source,
                "train_images": len(splits["train"].labels),
                "test_images": len(splits["test"].labels),
                "anchor": ANCHOR,
                "smoke": args.smoke,
            }
        )


if __name__ == "__main__":
    main()
