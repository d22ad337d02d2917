"""The sensitivity table: which observables see which parameters, against exact gradients."""

from __future__ import annotations

import numpy as np
import pytest

import bayestune as bt
from bayestune.exceptions import BayestuneError
from bayestune.hep import Histogram, HistogramObjective, sensitivity
from bayestune.history import Status, Trial
from bayestune.seeding import point_rng

EDGES = np.linspace(0.0, 1.0, 6)
X = 0.5 * (EDGES[:-1] + EDGES[1:])
SPACE = bt.Space([bt.Real("a", 0.0, 2.0), bt.Real("b", -1.0, 1.0), bt.Real("c", 0.0, 1.0)])
ERROR = 0.01  # each bin's data error; the runs' MC noise is 0.002
SLOPE_A = 0.05  # obs_a: d bin / d a, per unit of a (the range of a is 2)
SLOPE_B = 0.03  # obs_b: d bin / d b, per unit of b (range 2); obs_b also sees a, weakly


def simulator(params):
    """obs_a moves linearly with a, obs_b with b and b^2 and a little with a, flat sees
    nothing; c moves nothing. MC noise seeded from the point."""
    a, b = params["a"], params["b"]
    rng = point_rng(7, params)
    values = {"obs_a": 1.0 + SLOPE_A * a * X, "obs_b": 1.0 + SLOPE_B * (b + b**2) * X + 0.002 * a,
              "flat": np.full(X.size, 1.0)}
    return {n: Histogram.from_edges(f"/T/{n}", EDGES, v + rng.normal(0, 0.002, X.size),
                                    np.full(X.size, 0.002)) for n, v in values.items()}


def _runs(n):
    reference = {n: Histogram.from_edges(f"/T/{n}", EDGES, np.ones(X.size), np.full(X.size, ERROR))
                 for n in ("obs_a", "obs_b", "flat")}
    objective = HistogramObjective(simulator, reference, keep_bins=True, keep_pulls=False)
    rng = np.random.default_rng([11, n])
    trials = []
    for i, u in enumerate(rng.uniform(size=(n, 3))):
        p = {d.name: d.low + (d.high - d.low) * float(x) for d, x in zip(SPACE, u)}
        ev = objective(p)
        trials.append(Trial(i, p, Status.COMPLETE, ev.value, ev.variance, info=ev.info))
    return trials, objective


def test_sensitivity_finds_which_observable_sees_which_parameter():
    trials, objective = _runs(60)
    table = sensitivity(trials, SPACE, objective, step=0.1)
    assert table.model == "quadratic" and table.n_runs == 60
    rows = {n: dict(zip(table.parameters, r)) for n, r in zip(table.observables,
                                                               table.delta_chi2)}
    # exact: a shift of 0.1 of a's range (0.2) moves obs_a's bins by SLOPE_A * 0.2 * X
    exact_a = float(np.sum((SLOPE_A * 0.2 * X / ERROR) ** 2))
    assert rows["obs_a"]["a"] == pytest.approx(exact_a, rel=0.1)
    # obs_b's slope in b is SLOPE_B (1 + 2 b) X, its square averaged over b in [-1, 1]
    exact_b = float(np.sum((SLOPE_B * 0.2 * X / ERROR) ** 2)) * (1 + 4 / 3)
    assert rows["obs_b"]["b"] == pytest.approx(exact_b, rel=0.15)
    resolved = table.resolved()
    assert resolved[table.observables.index("obs_a"), 0]
    assert not resolved[table.observables.index("flat")].any()
    assert not resolved[:, table.parameters.index("c")].any()  # c moves nothing
    assert table.ranking("a")[0][0] == "obs_a"
    assert table.total()["c"] < 0.05 * table.total()["a"]
    text = table.table()
    assert "obs_a" in text and "total" in text and "aLund" not in text


def test_sensitivity_falls_back_to_linear_fits_and_checks_its_input():
    trials, objective = _runs(8)  # fewer than a quadratic in three parameters needs
    table = sensitivity(trials, SPACE, objective)
    assert table.model == "linear"
    assert table.ranking("a")[0][0] == "obs_a"
    with pytest.raises(ValueError, match="step=1.5"):
        sensitivity(trials, SPACE, objective, step=1.5)
    with pytest.raises(BayestuneError, match="at least 6 runs"):
        sensitivity(trials[:5], SPACE, objective)
    with pytest.raises(KeyError, match="'d'"):
        table.ranking("d")


def test_sensitivity_subtracts_the_noise_of_the_fitted_gradients():
    """Where an observable does not see a parameter, the noisy fitted gradients alone would
    give about the noise floor; with it subtracted the table reads about zero (judged over
    six sets of runs: the ratio to the floor averages about 0.1, and would be about 1.1)."""
    unseen = [("obs_a", "b"), ("obs_a", "c"), ("obs_b", "c"), ("flat", "a"), ("flat", "b"),
              ("flat", "c")]
    ratios = []
    for n in range(60, 66):
        trials, objective = _runs(n)
        table = sensitivity(trials, SPACE, objective)
        cells = [(table.observables.index(o), table.parameters.index(p)) for o, p in unseen]
        ratios.append(np.mean([table.delta_chi2[c] for c in cells])
                      / np.mean([table.noise[c] for c in cells]))
    assert abs(np.mean(ratios)) < 0.5
