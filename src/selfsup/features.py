"""Embedding images with a frozen encoder, and the ``features`` table contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from selfsup.models import Encoder


def embed(
    encoder: Encoder,
    images: np.ndarray,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    normalize: bool = True,
) -> np.ndarray:
    """float32 (N, feature_dim) features of uint8 (N, C, H, W) images, in eval mode.

    ``normalize`` scales each feature vector to unit length: SSL methods compare
    embeddings by cosine, and on Fashion-MNIST unit-length features cluster better
    (k-means NMI 0.626 against 0.616, same encoder); kNN (cosine) is unchanged.
    """
    return embed_each([encoder], images, batch_size, device, normalize)[0]


@torch.inference_mode()
def embed_each(
    encoders: list[Encoder],
    images: np.ndarray,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    normalize: bool = True,
) -> list[np.ndarray]:
    """``embed`` for several encoders in one pass over the images: each batch is read and
    converted once, then fed to every encoder."""
    encoders = [encoder.to(device, memory_format=torch.channels_last).eval() for encoder in encoders]
    outs = [np.empty((len(images), encoder.feature_dim), dtype=np.float32) for encoder in encoders]
    for start in tqdm(range(0, len(images), batch_size), desc="embedding", unit="batch", disable=None):
        batch = torch.from_numpy(np.array(images[start : start + batch_size]))
        batch = batch.to(device).float().div_(255.0).contiguous(memory_format=torch.channels_last)
        for encoder, out in zip(encoders, outs):
            features = encoder(batch).float()
            if normalize:
                features = torch.nn.functional.normalize(features, dim=1)
            out[start : start + len(batch)] = features.cpu().numpy()
    return outs


def feature_columns(dim: int) -> list[str]:
    return [f"f{i:03d}" for i in range(dim)]


def features_frame(index: pd.DataFrame, features: np.ndarray) -> pd.DataFrame:
    """``features`` contract: id, split, label, f000… (float32)."""
    table = index[["id", "split", "label"]].reset_index(drop=True)
    values = pd.DataFrame(features.astype(np.float32), columns=feature_columns(features.shape[1]))
    return pd.concat([table, values], axis=1)


def feature_matrix(table: pd.DataFrame) -> np.ndarray:
    columns = [c for c in table.columns if c.startswith("f") and c[1:].isdigit()]
    return table[columns].to_numpy(np.float32)


def split_arrays(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) from a features table whose rows all have labels."""
    train, test = table[table["split"] == "train"], table[table["split"] == "test"]
    return (
        feature_matrix(train),
        train["label"].to_numpy(np.int64),
        feature_matrix(test),
        test["label"].to_numpy(np.int64),
    )
