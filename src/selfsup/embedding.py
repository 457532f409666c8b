"""Embedding image files in one call: decode, resize like the training images, embed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from selfsup.data.folders import decode_images
from selfsup.data.trees import list_image_files
from selfsup.devices import resolve_device
from selfsup.encoder_checkpoint import encoder_from_checkpoint
from selfsup.errors import DataError, MissingInputError
from selfsup.features import embed, feature_columns


def load_checkpoint(checkpoint: str | os.PathLike | dict) -> dict:
    """A checkpoint dict, from a dict or from a file written by the pretraining pipeline."""
    if isinstance(checkpoint, dict):
        return checkpoint
    path = Path(checkpoint)
    if not path.is_file():
        raise MissingInputError(f"checkpoint {str(path)!r} does not exist; train one with `kedro run` first")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_encoder(path: str | os.PathLike) -> torch.nn.Module:
    """Rebuild a trained encoder (eval mode, CPU) from a checkpoint file."""
    return encoder_from_checkpoint(load_checkpoint(path))


def _image_files(paths_or_folder: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """The files to embed and their ids: paths relative to a folder, or the paths as given."""
    if isinstance(paths_or_folder, (str, os.PathLike)):
        root = Path(paths_or_folder)
        if root.is_file():
            return [root], [str(paths_or_folder)]
        files = list_image_files(root)
        if not files:
            raise DataError(f"{root}: no image files found to embed")
        return files, [file.relative_to(root).as_posix() for file in files]
    files = [Path(path) for path in paths_or_folder]
    if not files:
        raise DataError("no image paths given to embed")
    missing = [str(file) for file in files if not file.is_file()]
    if missing:
        raise MissingInputError(f"{len(missing)} image file(s) do not exist, e.g. {missing[0]!r}")
    return files, [str(path) for path in paths_or_folder]


def embed_images(
    paths_or_folder: str | os.PathLike | Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike | dict,
    *,
    image_size: tuple[int, int] | None = None,
    batch_size: int = 512,
    device: str = "auto",
    workers: int = 2,
    on_error: str = "fail",
) -> pd.DataFrame:
    """Features of image files as a DataFrame: ``id``, then ``f000…`` float32.

    ``paths_or_folder`` is a folder (every image under it, recursively; ids are the
    paths relative to it), one image file, or a list of files (ids are the paths as
    given). Images are converted to the encoder's channels and resized to
    ``image_size`` as ingestion does; by default the size at which the pipeline
    embedded its images (the stored images' size, recorded in the checkpoint),
    else the size of the training views.
    ``on_error="skip"`` leaves undecodable files out instead of failing.
    """
    loaded = load_checkpoint(checkpoint)
    encoder = encoder_from_checkpoint(loaded)
    channels = int(loaded["config"]["in_channels"])
    size = tuple(image_size or loaded.get("embedding_size") or loaded["config"]["image_size"])
    files, ids = _image_files(paths_or_folder)
    images, kept, _ = decode_images(files, channels, size, workers, on_error, progress_label="decoding")
    if not kept:
        raise DataError(f"none of the {len(files)} image files could be decoded")
    features = embed(encoder, images, batch_size, resolve_device(device))
    table = pd.DataFrame(features, columns=feature_columns(features.shape[1]))
    table.insert(0, "id", pd.Series([ids[index] for index in kept], dtype="string"))
    return table
