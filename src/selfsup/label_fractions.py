"""The evaluation protocol's label fractions: stratified subsets of the training labels.

Torch-free, so that the checks before a run (``selfsup.preflight``, ``selfsup.adapt``)
can try a fraction on the labels without loading the evaluation's models.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from selfsup.errors import ParameterError


def label_fraction(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Positions of a stratified ``fraction`` of ``labels``; every class keeps an example."""
    positions = np.arange(len(labels))
    where = f"evaluation.label_fractions={fraction} of {len(labels)} training labels"
    try:
        chosen, _ = train_test_split(positions, train_size=fraction, stratify=labels, random_state=seed)
    except ValueError as error:  # scikit-learn: fewer picks than classes, or a class of one
        raise ParameterError(f"{where} cannot give every class an example ({error}); raise the fraction") from None
    missing = set(np.unique(labels)) - set(np.unique(labels[chosen]))
    if missing:
        raise ParameterError(f"{where} leaves classes {sorted(missing)} without an example; raise the fraction")
    return np.sort(chosen)
