"""``evaluation`` and ``reporting``: the evaluation protocol's settings and the report's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from selfsup.config.base import StrictParams


class EvaluationParams(StrictParams):
    knn_k: tuple[int, ...] = (20, 200)
    label_fractions: tuple[float, ...] = (0.01, 0.1)
    linear_max_iter: int = Field(1000, ge=100)  # L-BFGS iterations of the probe's solver
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where the probe is solved
    n_clusters: int = Field(10, ge=2)  # k-means on unlabelled data only; labelled data uses the class count
    seed: int = 0

    @model_validator(mode="after")
    def _positive(self) -> EvaluationParams:
        if not self.knn_k or any(k < 1 for k in self.knn_k):
            raise ValueError(f"knn_k must be positive integers, got {list(self.knn_k)}")
        if any(not 0 < f < 1 for f in self.label_fractions):
            raise ValueError(f"label_fractions must lie in (0, 1), got {list(self.label_fractions)}")
        return self


class ReportingParams(StrictParams):
    embedding_plot_points: int = Field(2000, ge=10)
    seed: int = 0
