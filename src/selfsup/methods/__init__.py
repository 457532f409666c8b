"""Registry of self-supervised methods by the name used in ``pretraining.method``."""

from __future__ import annotations

from selfsup.config import PretrainingParams
from selfsup.methods.base import Method
from selfsup.methods.simclr import SimCLR
from selfsup.models import Encoder

METHODS: dict[str, type[Method]] = {"simclr": SimCLR}


def build_method(encoder: Encoder, params: PretrainingParams) -> Method:
    return METHODS[params.method](encoder, getattr(params, params.method))


__all__ = ["METHODS", "Method", "build_method"]
