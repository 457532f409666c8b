"""Where a `kedro run --env ENVIRONMENT` writes: the environment's `data` global, read as Kedro reads it."""

from __future__ import annotations

from pathlib import Path

from kedro.config import OmegaConfigLoader

ROOT = Path(__file__).resolve().parents[1]


def outputs(environment: str) -> Path:
    """The environment's data folder (conf/<environment>/globals.yml): data/ for base, data/<environment>/ else."""
    loader = OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env=environment)
    return ROOT / loader["globals"]["data"]
