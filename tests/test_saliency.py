"""What the features look at: Grad-CAM of a CNN run and [CLS] attention of a ViT run, on real (tiny) runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.runner import SequentialRunner

from selfsup.embedding import load_encoder
from selfsup.pipelines import augmentation, evaluation, feature_extraction, finetune, ingestion, pretraining, reporting
from selfsup.report.figures import image_positions, nearest_training_images
from selfsup.report.saliency import attention_maps, cls_attention, gradcam, saliency_maps
from tests.pipelines.test_stages import catalog_for


def _differ(first: np.ndarray, second: np.ndarray) -> bool:
    return float(np.abs(first - second).mean()) > 0.05


def _not_blank(heat: np.ndarray) -> bool:
    return heat.max() == pytest.approx(1.0) and heat.min() >= 0 and heat.std() > 0.05


def test_gradcam_of_the_tiny_run_marks_where_each_query_resembles_its_neighbour(tiny_run):
    data = tiny_run / "data"
    encoder = load_encoder(data / "06_models" / "encoder.pt")
    images = np.load(data / "02_intermediate" / "images.npy")
    index = pd.read_parquet(data / "02_intermediate" / "image_index.parquet")
    features = pd.read_parquet(data / "07_model_output" / "features.parquet")
    queries, train, neighbours = nearest_training_images(features, 2, 1, seed=0)
    query_images = images[image_positions(index, queries["id"])]
    nearest = images[image_positions(index, train.iloc[neighbours[:, 0]]["id"])]
    maps = gradcam(encoder, query_images, nearest)
    assert maps.shape == (2, 8, 8) and all(_not_blank(heat) for heat in maps)
    assert _differ(maps[0], maps[1])  # two different images, two different maps
    figure = saliency_maps(encoder, images, index, features, n_queries=3)
    assert len(figure.axes) == 3 * 4 and len(figure.axes[1].images) == 2  # the image and its map over it


@pytest.mark.slow  # a whole tiny ViT run, report included: 8 minutes on the 2 heavily shared cores here
def test_a_vit_run_reports_each_heads_cls_attention(tmp_path, tiny_parameters):
    tiny_parameters["pretraining"].update(backbone="vit_tiny")
    tiny_parameters["pretraining"]["vit_tiny"] = {"patch_size": 2, "depth": 2}
    tiny_parameters["finetune"]["enabled"] = False
    catalog = catalog_for(tmp_path, tiny_parameters)
    for stage in (ingestion, augmentation, pretraining, feature_extraction, finetune, evaluation, reporting):
        SequentialRunner().run(stage.create_pipeline(), catalog)
    html = (tmp_path / "report.html").read_text()
    assert 'id="fig-attention_maps"' in html and 'id="fig-saliency_maps"' not in html

    encoder = load_encoder(tmp_path / "encoder.pt")
    images = catalog.load("images")
    maps = cls_attention(encoder, np.array(images[:2]))
    assert maps.shape == (2, 3, 8, 8)  # vit_tiny's 3 heads over 8×8 digits
    assert all(_not_blank(heat) for heat in maps.reshape(-1, 8, 8))
    assert _differ(maps[0], maps[1])


def test_cls_attention_is_the_attention_the_vit_computes(tiny_parameters):
    from selfsup.encoder_checkpoint import random_encoder

    config = {"backbone": "vit_tiny", "in_channels": 1, "image_size": [8, 8], "mean": [0.3], "std": [0.4]}
    config["backbone_params"] = {"patch_size": 2, "depth": 2}
    encoder = random_encoder(config, seed=0).eval()
    images = torch.rand(3, 1, 8, 8)
    weights = encoder.backbone.last_attention(images)
    assert weights.shape == (3, 3, 17, 17)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(3, 3, 17))
    block = encoder.backbone.blocks[-1]  # the block's output from those weights is its forward's
    tokens = encoder.backbone.blocks[0](encoder.backbone.tokens(images))
    b, n, d = tokens.shape
    values = block.attn.qkv(block.norm1(tokens)).view(b, n, 3, 3, d // 3).permute(2, 0, 3, 1, 4)[2]
    mixed = block.attn.proj((weights @ values).transpose(1, 2).reshape(b, n, d))
    torch.testing.assert_close(mixed, block.attn(block.norm1(tokens)), rtol=1e-4, atol=1e-5)
    figure = attention_maps(encoder, (images.numpy() * 255).astype(np.uint8), *_table_of(3))
    assert len(figure.axes) == 1 * 4  # the query, then one map per head


def _table_of(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An image index and features for ``n`` images: one test query, the rest training images."""
    ids = [f"i{position}" for position in range(n)]
    splits = ["test"] + ["train"] * (n - 1)
    index = pd.DataFrame({"id": ids, "split": splits, "label": [0] * n})
    features = index.assign(f000=np.arange(n, dtype=np.float32) + 1, f001=np.ones(n, dtype=np.float32))
    return index, features


def test_gradcam_reads_a_resnets_last_stage():
    from selfsup.encoder_checkpoint import random_encoder

    config = {"backbone": "resnet18", "in_channels": 1, "image_size": [8, 8], "mean": [0.3], "std": [0.4]}
    encoder = random_encoder({**config, "backbone_params": {}}, seed=0)
    images = np.random.default_rng(0).integers(0, 256, (2, 1, 8, 8), dtype=np.uint8)
    maps = gradcam(encoder, images, images[::-1])
    assert maps.shape == (2, 8, 8) and np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
