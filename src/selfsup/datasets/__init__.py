"""Kedro datasets for selfsup's own artefacts (the Kedro glue layer).

kedro-datasets covers parquet, JSON, text and matplotlib; these add a
memory-mapped ``.npy`` store, the content-keyed view cache and encoder
checkpoints. All writes are atomic. Local filesystem only: memory-mapping needs it.
"""

from selfsup.datasets.checkpoint_dataset import EncoderCheckpointDataset
from selfsup.datasets.npy_dataset import NpyDataset
from selfsup.datasets.view_cache_dataset import ViewCacheDataset

__all__ = ["EncoderCheckpointDataset", "NpyDataset", "ViewCacheDataset"]
