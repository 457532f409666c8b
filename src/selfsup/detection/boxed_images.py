"""``BoxedImages``: images with their object boxes and labels, the detection stage's in-memory form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class BoxedImages:
    """uint8 (N, C, S, S) ``images``; per image, float32 (n, 4) ``boxes`` (x0, y0, x1, y1 in pixels, the
    far edges exclusive) and int64 (n,) ``labels`` in ``range(len(class_names))``."""

    images: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, positions: np.ndarray) -> BoxedImages:
        return BoxedImages(
            self.images[positions],
            [self.boxes[p] for p in positions],
            [self.labels[p] for p in positions],
            self.class_names,
        )


def resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (C, H, W) ``image`` as float32 in [0, 1] resized to ``size`` (bilinear, antialiased)."""
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).unsqueeze(0)
    out = F.interpolate(pixels, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out.squeeze(0).clamp_(0.0, 1.0).numpy()
