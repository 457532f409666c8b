"""The torch linear probe is scikit-learn's classifier: same predictions, same optimum.

On real features: Fashion-MNIST raw pixels and the features of a short SimCLR run
(``feature_sets`` in conftest.py), and digits for the binary model.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from selfsup.evaluate import linear_probe
from selfsup.probe import fit_linear_probe


def sklearn_probe(x, y, tol=1e-4, max_iter=1000):
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=tol, max_iter=max_iter)).fit(x, y)


def relative_difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


@pytest.mark.parametrize("name", ["raw_pixels", "ssl"])
def test_probe_predicts_like_sklearn(feature_sets, name):
    train_x, train_y, test_x, test_y = feature_sets[name]
    probe = fit_linear_probe(train_x, train_y)
    assert probe.convergence.converged
    ours = np.mean(probe.predict(test_x) == test_y)
    theirs = np.mean(sklearn_probe(train_x, train_y).predict(test_x) == test_y)
    assert abs(ours - theirs) <= 0.002


def objective(x: np.ndarray, y: np.ndarray, weights: np.ndarray, intercepts: np.ndarray) -> float:
    """Mean cross-entropy + ||W||² / (2 C n), C = 1, on standardised features, in float64 numpy."""
    scores = StandardScaler().fit_transform(x.astype(np.float64)) @ weights.T.astype(np.float64) + intercepts
    scores -= scores.max(axis=1, keepdims=True)
    log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    codes = np.unique(y, return_inverse=True)[1]
    return float(-log_p[np.arange(len(y)), codes].mean() + np.square(weights.astype(np.float64)).sum() / (2 * len(y)))


@pytest.mark.parametrize("name", ["raw_pixels", "ssl"])
def test_probe_reaches_sklearns_optimum(feature_sets, name):
    """The objective is strictly convex: one optimum. At the default tolerances ours is no
    farther from it than scikit-learn's; solved tightly, both reach it (objective within
    0.1 %, weights within 3 %: the objective is flat along some directions, and scikit-learn's
    lbfgs stops on its relative decrease before a tol this small)."""
    train_x, train_y, _, _ = feature_sets[name]
    ours = lambda probe: objective(train_x, train_y, probe.weights.numpy(), probe.intercepts.numpy())
    theirs = lambda model: objective(train_x, train_y, model[-1].coef_, model[-1].intercept_)
    assert ours(fit_linear_probe(train_x, train_y)) <= theirs(sklearn_probe(train_x, train_y)) + 1e-7

    tight = fit_linear_probe(train_x, train_y, tolerance=1e-5, max_iter=20000)
    assert tight.convergence.converged
    reference = sklearn_probe(train_x, train_y, tol=1e-7, max_iter=50000)
    assert ours(tight) == pytest.approx(theirs(reference), rel=1e-3)
    assert relative_difference(tight.weights.numpy(), reference[-1].coef_) <= 0.03


def test_binary_probe_is_sklearns_binary_model():
    """Two classes: one weight vector (not two multinomial ones), as scikit-learn fits."""
    x, y = load_digits(return_X_y=True)
    x, y = x[y < 2], y[y < 2] + 3
    probe = fit_linear_probe(x, y, tolerance=1e-8)
    reference = sklearn_probe(x, y, tol=1e-10, max_iter=10000)
    assert probe.weights.shape == reference[-1].coef_.shape == (1, 64)
    assert relative_difference(probe.weights.numpy(), reference[-1].coef_) <= 1e-3
    assert np.array_equal(probe.predict(x), reference.predict(x))


def test_a_probe_stopped_by_max_iter_says_so(caplog):
    x, y = load_digits(return_X_y=True)
    probe = fit_linear_probe(x, y, max_iter=3)
    assert probe.convergence.iterations == 3 and not probe.convergence.converged
    with caplog.at_level(logging.WARNING):
        _, convergence = linear_probe(x, y, x, max_iter=3)
    assert not convergence.converged
    assert "evaluation.linear_max_iter=3" in caplog.text


def test_probe_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        fit_linear_probe(np.zeros((4, 3)), np.ones(4))
