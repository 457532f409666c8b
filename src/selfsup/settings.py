"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from selfsup.hooks import TrackRunHook, ValidateParametersHook

HOOKS = (ValidateParametersHook(), TrackRunHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
# "soft": an environment overrides single parameters (pretraining.epochs) and
# keeps the rest of the section from base.
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local", "merge_strategy": {"parameters": "soft"}}
