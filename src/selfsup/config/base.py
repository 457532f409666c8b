"""The base of every parameter schema, the checks they share, and ``validate``."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, ConfigDict, ValidationError

from selfsup.errors import ParameterError


class StrictParams(BaseModel):
    """Unknown keys are errors (a typo fails instead of being ignored); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_known(name: str, allowed: Collection[str]) -> str:
    if name not in allowed:
        raise ValueError(f"unknown name {name!r}; allowed: {', '.join(sorted(allowed))}")
    return name


def check_range(name: str, pair: tuple[float, float], low: float, high: float) -> None:
    lo, hi = pair
    if not (low < lo <= hi <= high):
        raise ValueError(f"{name} must satisfy {low} < min <= max <= {high}, got {list(pair)}")


def validate(model: type[StrictParams], section: str, values: dict | None) -> StrictParams:
    """Build ``model`` from ``values`` or raise one ``ParameterError`` naming the culprit."""
    try:
        return model.model_validate(values or {})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in (section, *err["loc"]))
            if err["loc"]:
                problems.append(f"{where}={err.get('input')!r}: {err['msg']}")
            else:  # a check across the section's values: its message names them, the section is too long to print
                problems.append(f"{where}: {err['msg']}")
        raise ParameterError("; ".join(problems)) from None
