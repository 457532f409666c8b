"""What the features look at: Grad-CAM maps (CNN backbones) and [CLS] attention maps (ViT backbones).

Both are drawn for the retrieval grid's queries. A CNN's map is Grad-CAM
(Selvaraju et al., 2017) on its last feature map for the cosine similarity of a
query's features to its nearest training image's: the feature map's channels
weighted by their mean gradient, summed, rectified; where the image raises the
similarity that retrieval ranks by. A ViT's maps are the last block's attention
from the [CLS] token to every patch, one per head, as DINO (Caron et al., 2021)
shows them. Every map is scaled to [0, 1] by its maximum and upsampled to the image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from selfsup.models import Encoder
from selfsup.models.backbones import SmallCNN
from selfsup.models.resnet import ResNet
from selfsup.models.vit import ViT
from selfsup.report.figures import image_positions, nearest_training_images, retrieval_queries, show_image


def is_vit(encoder: Encoder) -> bool:
    return isinstance(encoder.backbone, ViT)


def last_feature_map(backbone: nn.Module) -> nn.Module:
    """The module whose output is the CNN's last spatial feature map (before the pooling)."""
    if isinstance(backbone, SmallCNN):
        return backbone.body[-3]  # the last conv block; then the average pool and the flatten
    if isinstance(backbone, ResNet):
        return backbone.net.layer4
    raise TypeError(f"no spatial feature map known for backbone {type(backbone).__name__}")


def _as_input(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images)).float().div_(255.0)


def _scaled(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(B, h, w) non-negative maps upsampled to ``size`` and divided by each one's maximum (all-zero maps stay 0)."""
    maps = F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
    peak = maps.flatten(1).amax(dim=1).clamp(min=1e-12).view(-1, 1, 1)
    return (maps / peak).numpy()


def gradcam(encoder: Encoder, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(B, H, W) Grad-CAM maps in [0, 1] of uint8 (B, C, H, W) ``images`` for the cosine similarity
    of each image's features to those of the same row of ``targets``."""
    encoder = encoder.eval()
    captured: list[torch.Tensor] = []
    hook = last_feature_map(encoder.backbone).register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.no_grad():
            target_features = encoder(_as_input(targets))
        captured.clear()
        with torch.enable_grad():
            similarity = F.cosine_similarity(encoder(_as_input(images)), target_features, dim=1)
            (activation,) = captured
            (gradient,) = torch.autograd.grad(similarity.sum(), activation)
    finally:
        hook.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = (weights * activation).sum(dim=1).clamp(min=0).detach()
    return _scaled(cam, tuple(images.shape[-2:]))


@torch.no_grad()
def cls_attention(encoder: Encoder, images: np.ndarray) -> np.ndarray:
    """(B, heads, H, W) maps in [0, 1]: the last block's attention from [CLS] to each patch, per head,
    of uint8 (B, C, H, W) ``images`` (pixels past the last whole patch, which the ViT ignores, stay 0)."""
    encoder = encoder.eval()
    vit = encoder.backbone
    attention = vit.last_attention(encoder.normalise(_as_input(images)))  # (B, heads, 1 + N, 1 + N)
    b, heads = attention.shape[:2]
    grid = vit.grid_for(*images.shape[-2:])
    maps = attention[:, :, 0, 1:].reshape(b * heads, *grid)
    covered = (grid[0] * vit.patch_size, grid[1] * vit.patch_size)
    scaled = _scaled(maps, covered).reshape(b, heads, *covered)
    padded = np.zeros((b, heads, *images.shape[-2:]), dtype=np.float32)
    padded[..., : covered[0], : covered[1]] = scaled
    return padded


def _overlay(axis, image: np.ndarray, heat: np.ndarray) -> None:
    show_image(axis, image)
    axis.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")


def saliency_maps(
    encoder: Encoder,
    images: np.ndarray,
    image_index: pd.DataFrame,
    features: pd.DataFrame,
    n_queries: int = 8,
    seed: int = 0,
) -> Figure:
    """Each retrieval query and its nearest training image, each beside its Grad-CAM map for their similarity."""
    queries, train, neighbours = nearest_training_images(features, n_queries, 1, seed)
    query_images = images[image_positions(image_index, queries["id"])]
    nearest_images = images[image_positions(image_index, train.iloc[neighbours[:, 0]]["id"])]
    query_maps = gradcam(encoder, query_images, nearest_images)
    nearest_maps = gradcam(encoder, nearest_images, query_images)
    figure = Figure(figsize=(5.2, 1.2 * len(queries) + 0.4))
    axes = figure.subplots(len(queries), 4, squeeze=False)
    for row in range(len(queries)):
        show_image(axes[row, 0], query_images[row])
        _overlay(axes[row, 1], query_images[row], query_maps[row])
        show_image(axes[row, 2], nearest_images[row])
        _overlay(axes[row, 3], nearest_images[row], nearest_maps[row])
    for column, title in enumerate(("query", "Grad-CAM", "nearest", "Grad-CAM")):
        axes[0, column].set_title(title, fontsize=8)
    figure.suptitle("Grad-CAM of the cosine similarity to the nearest training image (last feature map)", fontsize=9)
    figure.tight_layout()
    return figure


def attention_maps(
    encoder: Encoder,
    images: np.ndarray,
    image_index: pd.DataFrame,
    features: pd.DataFrame,
    n_queries: int = 8,
    seed: int = 0,
) -> Figure:
    """Each retrieval query and the last block's [CLS] attention over it, one map per head."""
    queries = retrieval_queries(features, n_queries, seed)
    query_images = images[image_positions(image_index, queries["id"])]
    maps = cls_attention(encoder, query_images)
    heads = maps.shape[1]
    figure = Figure(figsize=(max(4.0, 1.2 * (heads + 1)), 1.2 * len(queries) + 0.4))
    axes = figure.subplots(len(queries), heads + 1, squeeze=False)
    for row in range(len(queries)):
        show_image(axes[row, 0], query_images[row])
        for head in range(heads):
            _overlay(axes[row, head + 1], query_images[row], maps[row, head])
    axes[0, 0].set_title("query", fontsize=8)
    for head in range(heads):
        axes[0, head + 1].set_title(f"head {head + 1}", fontsize=8)
    figure.suptitle("last block's [CLS] attention to each patch, per head", fontsize=9)
    figure.tight_layout()
    return figure
