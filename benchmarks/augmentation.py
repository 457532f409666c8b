"""Augmentation throughput: two SimCLR views per image, batched selfsup vs torchvision on PIL.

Same operations on both sides: random resized crop (scale 0.08–1), horizontal
flip, colour jitter (brightness/contrast/saturation 0.4, p 0.8), grayscale
(p 0.2, RGB), Gaussian blur (p 0.5, sigma 0.1–2, 9-tap). The baseline is the
usual recipe: torchvision transforms on PIL images in a DataLoader with 2
workers. The ratio reported is the smallest over the three image kinds.

    python benchmarks/augmentation.py
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, emit

from selfsup.augment import augment_batch
from selfsup.config import AugmentationParams

KINDS = [("32x32_rgb", 3, 32, 4096), ("96x96_rgb", 3, 96, 1024), ("28x28_gray", 1, 28, 4096)]
BATCH = 256


def selfsup_params(channels: int) -> AugmentationParams:
    rgb = channels == 3
    return AugmentationParams(
        crop_scale=(0.08, 1.0),
        max_translate=0.0,
        hflip_p=0.5,
        brightness=0.4,
        contrast=0.4,
        saturation=0.4 if rgb else 0.0,
        color_jitter_p=0.8,
        grayscale_p=0.2 if rgb else 0.0,
        blur_p=0.5,
        blur_sigma=(0.1, 2.0),
        noise_std=0.0,
    )


def torchvision_transform(channels: int, size: int) -> T.Compose:
    rgb = channels == 3
    steps = [
        T.RandomResizedCrop(size, scale=(0.08, 1.0)),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4 if rgb else 0.0)], p=0.8),
    ]
    if rgb:
        steps.append(T.RandomGrayscale(0.2))
    steps += [T.RandomApply([T.GaussianBlur(9, sigma=(0.1, 2.0))], p=0.5), T.ToTensor()]
    return T.Compose(steps)


def to_pil(image: np.ndarray) -> Image.Image:
    """uint8 (C, H, W) → a PIL image in mode L or RGB."""
    hwc = np.moveaxis(image, 0, -1)
    return Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc)


class TwoViews(Dataset):
    """The usual recipe's dataset: PIL images, two transformed views per item."""

    def __init__(self, images: np.ndarray, transform):
        self.images = [to_pil(image) for image in images]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i]
        return self.transform(image), self.transform(image)


def selfsup_views(images: torch.Tensor, params: AugmentationParams) -> None:
    generator = torch.Generator().manual_seed(0)
    for start in range(0, len(images), BATCH):
        batch = images[start : start + BATCH]
        augment_batch(batch, params, generator)
        augment_batch(batch, params, generator)


def torchvision_views(loader: DataLoader) -> None:
    for _ in loader:
        pass


def main() -> None:
    results = {}
    for name, channels, size, n in KINDS:
        images = np.random.default_rng(0).integers(0, 256, (n, channels, size, size), dtype=np.uint8)
        tensor = torch.from_numpy(images)
        ours = best_time(functools.partial(selfsup_views, tensor, selfsup_params(channels)))
        loader = DataLoader(
            TwoViews(images, torchvision_transform(channels, size)),
            batch_size=BATCH,
            num_workers=2,
            persistent_workers=True,
        )
        torchvision_views(loader)  # start the workers outside the timing
        usual = best_time(functools.partial(torchvision_views, loader), repeats=2)
        results[name] = {
            "selfsup_views_per_s": 2 * n / ours,
            "torchvision_views_per_s": 2 * n / usual,
            "ratio": usual / ours,
        }
    emit(
        {
            "benchmark": "augmentation",
            "kinds": results,
            "ratio": min(r["ratio"] for r in results.values()),
            "target": 10.0,
        }
    )


if __name__ == "__main__":
    main()
