"""Kedro datasets for selfsup's own artefacts (the Kedro glue layer).

kedro-datasets covers parquet, JSON, text and matplotlib; these add a
memory-mapped ``.npy`` store, the content-keyed view cache, encoder
checkpoints and a JSON file that may not exist yet. All writes are atomic (but the JSON file's,
written by kedro-datasets). Local filesystem only: memory-mapping needs it.
"""

from selfsup.datasets.checkpoint_dataset import EncoderCheckpointDataset
from selfsup.datasets.npy_dataset import NpyDataset
from selfsup.datasets.optional_json_dataset import OptionalJSONDataset
from selfsup.datasets.view_cache_dataset import ViewCacheDataset

__all__ = ["EncoderCheckpointDataset", "NpyDataset", "OptionalJSONDataset", "ViewCacheDataset"]
