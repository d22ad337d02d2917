"""Per-bin quadratic models: exact on a linear-Gaussian model, clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest

import bayestune as bt
from bayestune.hep import Histogram, HistogramObjective
from bayestune.hep.binwise import fit_binwise

EDGES = np.linspace(0.0, 1.0, 9)
X = 0.5 * (EDGES[:-1] + EDGES[1:])


def linear_simulator(params):
    values = params["a"] + params["b"] * X
    return {"h": Histogram.from_edges("/T/h", EDGES, values, np.full(X.size, 1e-3))}


def test_binwise_recovers_the_linear_gaussian_covariance():
    rng = np.random.default_rng(4)
    sigma = 0.05 + 0.05 * X
    data = 1.0 + 2.0 * X + rng.normal(0, sigma)
    ref = {"h": Histogram.from_edges("/T/h", EDGES, data, sigma)}
    objective = HistogramObjective(linear_simulator, ref, keep_bins=True, keep_pulls=False)
    design = np.column_stack([np.ones_like(X), X])
    vinv = np.diag(1 / sigma**2)
    exact_cov = np.linalg.inv(design.T @ vinv @ design)
    theta = exact_cov @ design.T @ vinv @ data
    space = bt.Space([bt.Real("a", 0.0, 2.0), bt.Real("b", 1.0, 3.0)])
    tuner = bt.Tuner(space, objective, seed=0)
    for u in rng.uniform(-3, 3, size=(14, 2)):
        p = {"a": theta[0] + u[0] * 0.05, "b": theta[1] + u[1] * 0.1}
        tuner.add(p, objective(p))
    model = fit_binwise(tuner.history, space, objective)
    unc = model.uncertainty()
    assert unc.valid and unc.hessian_positive_definite
    np.testing.assert_allclose([unc.x["a"], unc.x["b"]], theta, atol=1e-4)
    sd = np.sqrt(np.diag(exact_cov))
    # the polynomial's own (tiny) prediction error adds to the data errors: within 2 %
    assert np.max(np.abs((unc.covariance - exact_cov) / np.outer(sd, sd))) < 0.02


def test_binwise_needs_stored_bins_and_enough_points():
    ref = {"h": Histogram.from_edges("/T/h", EDGES, 1 + X, np.full(X.size, 0.1))}
    space = bt.Space([bt.Real("a", 0.0, 2.0), bt.Real("b", 1.0, 3.0)])
    plain = HistogramObjective(linear_simulator, ref)
    tuner = bt.Tuner(space, plain, seed=0)
    tuner.add({"a": 1.0, "b": 2.0}, plain({"a": 1.0, "b": 2.0}))
    with pytest.raises(bt.BayestuneError, match="keep_bins=True"):
        fit_binwise(tuner.history, space, plain)
    keep = HistogramObjective(linear_simulator, ref, keep_bins=True)
    tuner = bt.Tuner(space, keep, seed=0)
    tuner.add({"a": 1.0, "b": 2.0}, keep({"a": 1.0, "b": 2.0}))
    with pytest.raises(bt.BayestuneError, match="at least 8"):
        fit_binwise(tuner.history, space, keep)
