"""``OptionalJSONDataset``: the JSON file of an on-demand pipeline, ``{}`` until that pipeline has run."""

from __future__ import annotations

from kedro_datasets.json import JSONDataset


class OptionalJSONDataset(JSONDataset):
    """Loads ``{}`` while the file does not exist, so that a stage of every run can read what an
    on-demand pipeline (detection) may have written."""

    def load(self) -> dict:
        return super().load() if self._exists() else {}
