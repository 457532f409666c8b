"""Kedro hooks: validate every stage's parameters before any node runs."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl

from selfsup.config import SCHEMAS
from selfsup.preflight import validate_run


class ValidateParametersHook:
    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        values = {section: catalog.load(f"params:{section}") for section in SCHEMAS if f"params:{section}" in catalog}
        used = {section for section in values if f"params:{section}" in pipeline.inputs()}
        validate_run(values, used)
