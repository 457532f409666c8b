"""Training a detector for a fixed number of steps, and its detections on images.

AdamW, linear warmup then cosine decay to zero over ``steps``; every step a batch of
``batch_size`` training images drawn in shuffled passes. In ``finetune`` mode the encoder
learns at ``encoder_lr_scale`` times the head's rate (the caller's choice per encoder).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models.detection import FCOS

from selfsup.detection.boxed_images import BoxedImages
from selfsup.finetune import endless_batches
from selfsup.schedule import warmup_cosine

PREDICT_BATCH = 64


@dataclass(frozen=True)
class Detections:
    """Per image: float32 (n, 4) boxes (x0, y0, x1, y1), float32 (n,) scores, int64 (n,) labels."""

    boxes: list[np.ndarray]
    scores: list[np.ndarray]
    labels: list[np.ndarray]


def _as_input(images: np.ndarray, device: torch.device) -> list[torch.Tensor]:
    return list(torch.from_numpy(np.array(images)).to(device).float().div_(255.0))


def train_detector(
    detector: FCOS,
    data: BoxedImages,
    steps: int,
    batch_size: int,
    learning_rate: float,
    encoder_lr_scale: float,
    weight_decay: float,
    warmup_steps: int,
    seed: int,
    device: torch.device,
) -> tuple[float, float]:
    """Train ``detector`` (in place) on ``data``; returns (the last step's loss, seconds)."""
    generator = torch.Generator().manual_seed(seed)
    encoder = detector.backbone.encoder
    encoder_params = [p for p in encoder.parameters() if p.requires_grad]
    encoder_ids = {id(p) for p in encoder.parameters()}
    rest = [p for p in detector.parameters() if id(p) not in encoder_ids]
    groups = [{"params": rest, "lr": learning_rate}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": learning_rate * encoder_lr_scale})
    optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    detector.to(device).train()
    order = endless_batches(len(data), min(batch_size, len(data)), generator)
    start, loss = time.perf_counter(), torch.tensor(float("nan"))
    for step in range(steps):
        for group, base_lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base_lr * warmup_cosine(step, min(warmup_steps, steps - 1), steps)
        positions = next(order)
        targets = [
            {"boxes": torch.from_numpy(data.boxes[p]).to(device), "labels": torch.from_numpy(data.labels[p]).to(device)}
            for p in positions
        ]
        losses = detector(_as_input(data.images[positions], device), targets)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return float(loss.detach()), time.perf_counter() - start


@torch.inference_mode()
def detect(detector: FCOS, images: np.ndarray, device: torch.device) -> Detections:
    """The detections of ``detector`` (in eval mode) on uint8 (N, C, S, S) ``images``."""
    detector.to(device).eval()
    boxes, scores, labels = [], [], []
    for start in range(0, len(images), PREDICT_BATCH):
        for found in detector(_as_input(images[start : start + PREDICT_BATCH], device)):
            boxes.append(found["boxes"].cpu().numpy().astype(np.float32))
            scores.append(found["scores"].cpu().numpy().astype(np.float32))
            labels.append(found["labels"].cpu().numpy().astype(np.int64))
    return Detections(boxes, scores, labels)
