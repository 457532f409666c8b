"""Backbones and the ``Encoder`` that the feature stage keeps.

An encoder is rebuilt from a plain config dict (stored in every checkpoint):
``{"backbone", "in_channels", "image_size", "backbone_params", "mean", "std"}``.
It takes float images in [0, 1] and returns (B, feature_dim) features; ``spatial_maps`` gives the
backbone's feature maps by stride (the detection stage builds its feature pyramid on them).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
from torch import nn

from selfsup.models.resnet import resnet18, resnet50
from selfsup.models.vit import vit_small, vit_tiny


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """3×3 conv blocks for small images; 2× max-pool after each middle block.

    The last feature map is average-pooled to an ``output_grid``×``output_grid``
    grid and flattened: a grid above 1 keeps coarse spatial layout in the features.
    """

    def __init__(self, in_channels: int, widths: Sequence[int] = (32, 64, 128, 256), output_grid: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for position, width in enumerate(widths):
            layers.append(_conv_block(channels, width))
            if 0 < position < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            channels = width
        layers += [nn.AdaptiveAvgPool2d(output_grid), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.feature_dim = channels * output_grid**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each conv block, shallow to deep (the last one is what ``forward`` pools)."""
        maps = []
        for layer in self.body[:-2]:  # not the average pool and the flatten
            x = layer(x)
            if not isinstance(layer, nn.MaxPool2d):
                maps.append(x)
        return maps


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "small_cnn": SmallCNN,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "vit_tiny": vit_tiny,
    "vit_small": vit_small,
}


class Encoder(nn.Module):
    """Normalises [0, 1] inputs with the training set's statistics, then runs the backbone."""

    def __init__(self, config: dict):
        super().__init__()
        name = config["backbone"]
        if name not in BACKBONES:
            raise ValueError(f"unknown backbone {name!r}; allowed: {sorted(BACKBONES)}")
        self.config = dict(config)
        channels = config["in_channels"]
        build = BACKBONES[name]
        backbone_params = dict(config.get("backbone_params", {}))
        if "image_size" in inspect.signature(build).parameters:  # e.g. a ViT sizes its position embeddings
            backbone_params["image_size"] = tuple(config["image_size"])
        self.backbone = build(channels, **backbone_params)
        self.register_buffer("mean", torch.tensor(config["mean"], dtype=torch.float32).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(config["std"], dtype=torch.float32).view(1, channels, 1, 1))
        self.feature_dim = self.backbone.feature_dim

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """What the backbone sees: [0, 1] inputs standardised per channel."""
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalise(x))

    def spatial_maps(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """The backbone's feature maps of [0, 1] inputs ``x`` by their stride (input height / map height),
        the deepest map of each stride. A backbone without ``feature_maps`` has no spatial layout to offer."""
        if not has_spatial_maps(self):
            raise TypeError(f"the {self.config['backbone']} backbone has no spatial feature maps")
        return {round(x.shape[-2] / m.shape[-2]): m for m in self.backbone.feature_maps(self.normalise(x))}


def has_spatial_maps(encoder: Encoder) -> bool:
    """Whether the encoder's backbone exposes its feature maps (``feature_maps(x)``, shallow to deep)."""
    return callable(getattr(encoder.backbone, "feature_maps", None))


def build_encoder(config: dict) -> Encoder:
    return Encoder(config)
