"""Kedro hooks: validate every stage's parameters before any node runs."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl

from selfsup.config import SCHEMAS, validate


class ValidateParametersHook:
    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        for section, schema in SCHEMAS.items():
            name = f"params:{section}"
            if name in catalog:
                validate(schema, section, catalog.load(name))
