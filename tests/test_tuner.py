"""Tuner: ask/tell, recovery of known optima, failures, reproducibility, noisy objectives."""

from __future__ import annotations

import math

import numpy as np
import pytest

import bayestune as bt
from bayestune import (
    BayestuneError,
    CampaignError,
    Categorical,
    Evaluation,
    Integer,
    Real,
    Space,
    Status,
    Tuner,
)
from bayestune.testfunctions import branin, hartmann6


def test_branin_recovers_a_global_minimum():
    prob = branin()
    res = bt.minimize(prob, prob.space, 30, seed=3)
    assert prob.regret(res.fun) < 0.05
    x = np.array([res.x["x1"], res.x["x2"]])
    dist = min(np.linalg.norm(x - np.array(m)) for m in prob.minimizers)
    assert dist < 0.3
    assert res.success and res.n_evals == 30 and res.n_failed == 0


def test_hartmann6_recovers_the_global_minimum():
    prob = hartmann6()
    res = bt.minimize(prob, prob.space, 60, seed=4)
    assert prob.regret(res.fun) < 0.05
    x = np.array([res.x[n] for n in prob.space.names])
    assert np.max(np.abs(x - np.array(prob.minimizers[0]))) < 0.1


def quadratic(p):
    return (p["a"] - 0.3) ** 2 + (p["b"] + 1.0) ** 2


SPACE2 = Space([Real("a", -2, 2), Real("b", -2, 2)])


def test_ask_tell_primitives_and_run_is_a_loop_over_them():
    manual = Tuner(SPACE2, seed=5)
    for _ in range(12):
        trial = manual.ask()
        manual.tell(trial, quadratic(trial.params))
    auto = Tuner(SPACE2, quadratic, seed=5)
    auto.run(12)
    assert [t.params for t in manual.history] == [t.params for t in auto.history]
    assert manual.result().x == auto.result().x


def test_same_seed_same_points_different_seed_different_points():
    a = Tuner(SPACE2, quadratic, seed=11)
    a.run(9)
    b = Tuner(SPACE2, quadratic, seed=11)
    b.run(9)
    c = Tuner(SPACE2, quadratic, seed=12)
    c.run(9)
    assert [t.params for t in a.history] == [t.params for t in b.history]
    assert [t.params for t in a.history] != [t.params for t in c.history]


def test_failed_and_nan_evaluations_are_recorded_and_skipped():
    calls = []

    def flaky(p):
        calls.append(p)
        k = len(calls)
        if k % 4 == 0:
            raise RuntimeError(f"simulation crashed at call {k}")
        if k % 4 == 1 and k > 1:
            return float("nan")
        if k == 7:
            return float("inf")
        return quadratic(p)

    tuner = Tuner(SPACE2, flaky, seed=2)
    res = tuner.run(16)
    hist = res.history
    assert len(hist) == 16 and res.n_evals == 16
    failed = hist.failed
    assert len(failed) == 4 + 3 + 1
    errors = [t.error for t in failed]
    assert any("RuntimeError: simulation crashed at call 4" in e for e in errors)
    assert any("non-finite value: nan" in e for e in errors)
    assert any("non-finite value: inf" in e for e in errors)
    assert all(t.value is None for t in failed)
    # the surrogate saw only the completed values
    assert res.surrogate.posteriors[0].X_train.shape[0] == len(hist.completed) == 8
    assert math.isfinite(res.fun)


def test_wrong_return_type_is_a_failed_trial():
    tuner = Tuner(SPACE2, lambda p: "chi2=3", seed=0, max_consecutive_failures=3)
    with pytest.raises(CampaignError, match=r"last 3 evaluations all failed.*float or an "
                                            r"Evaluation, got 'chi2=3'"):
        tuner.run(10)
    assert len(tuner.history.failed) == 3


def test_objective_that_always_fails_stops_with_clear_message():
    def broken(p):
        raise FileNotFoundError("pythia.cmnd not found")

    tuner = Tuner(SPACE2, broken, seed=0, max_consecutive_failures=4)
    with pytest.raises(CampaignError, match="FileNotFoundError: pythia.cmnd not found"):
        tuner.run(50)
    assert len(tuner.history) == 4
    assert not tuner.result().success


def test_noisy_objective_recommends_lowest_posterior_mean():
    rng = np.random.default_rng(0)
    sd = 0.3

    def noisy(p):
        return Evaluation(quadratic(p) + rng.normal(0, sd), variance=sd**2)

    tuner = Tuner(SPACE2, noisy, seed=4, n_initial=8)
    res = tuner.run(30)
    assert res.noisy
    assert "nei" in res.history[-1].source
    done = res.history.completed
    mean, _ = res.surrogate.predict(SPACE2.to_unit([t.params for t in done]))
    chosen = [t.params for t in done].index(res.x)
    assert chosen == int(np.argmin(mean))
    assert res.fun == pytest.approx(mean[chosen])
    # the recommendation is near the true optimum in truth, not just lucky
    assert quadratic(res.x) < 0.1


def test_mixed_space_proposals_are_always_valid():
    space = Space([Real("lr", 1e-4, 1e-1, log=True), Integer("depth", 2, 6),
                   Categorical("opt", ["adamw", "ranger", "sgd"])])
    seen = []

    def objective(p):
        seen.append(p)
        assert isinstance(p["depth"], int) and 2 <= p["depth"] <= 6
        assert p["opt"] in ("adamw", "ranger", "sgd")
        penalty = {"adamw": 0.0, "ranger": 0.5, "sgd": 1.0}[p["opt"]]
        return (math.log10(p["lr"]) + 2.5) ** 2 + (p["depth"] - 4) ** 2 * 0.1 + penalty

    res = bt.minimize(objective, space, 25, seed=0)
    assert len(seen) == 25
    assert res.x["opt"] == "adamw" and res.x["depth"] in (3, 4, 5)


def test_learned_lengthscales_reported_per_parameter_in_physical_units():
    space = Space([Real("x", 0, 100), Real("y", 1e-3, 1e3, log=True)])

    def fun(p):
        return math.sin(p["x"] / 10.0)

    res = bt.minimize(fun, space, 20, seed=0)
    ls = res.lengthscales
    assert set(ls) == {"x", "y"}
    unit = res.surrogate.lengthscales
    assert ls["x"] == pytest.approx(unit[0] * 100)
    assert ls["y"] == pytest.approx(unit[1] * math.log(1e6))
    assert ls["y"] > ls["x"] / 100 * math.log(1e6)  # y is irrelevant: longer relative scale


def test_result_repr_and_flags():
    space = Space([Real("a", 0, 1), Real("b", 0, 1)])
    res = bt.minimize(lambda p: p["a"] + (p["b"] - 0.5) ** 2, space, 14, seed=0)
    assert "a" in res.at_limit  # the minimum is on the bound a = 0
    text = repr(res)
    assert "n_evals  = 14 (0 failed)" in text and "at_limit" in text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"seed": -1}, r"got seed=-1"), ({"n_initial": 1}, r"got n_initial=1"),
     ({"initial_design": "grid"}, r"got initial_design='grid'"),
     ({"engine": "optuna"}, r"got engine='optuna'"),
     ({"acquisition": "ucb"}, r"got acquisition='ucb'")],
)
def test_tuner_argument_errors(kwargs, match):
    with pytest.raises(BayestuneError, match=match):
        tuner = Tuner(SPACE2, quadratic, **kwargs)
        tuner.run(12)


def test_run_needs_objective_and_positive_budget():
    with pytest.raises(BayestuneError, match="needs an objective"):
        Tuner(SPACE2).run(3)
    with pytest.raises(BayestuneError, match="got n_evals=0"):
        Tuner(SPACE2, quadratic).run(0)


def test_tell_twice_is_refused():
    tuner = Tuner(SPACE2, seed=0)
    trial = tuner.ask()
    tuner.tell(trial, 1.0)
    with pytest.raises(bt.StoreError, match="already complete"):
        tuner.tell(trial, 2.0)


def test_batch_ask_returns_distinct_valid_points():
    tuner = Tuner(SPACE2, seed=1)
    for trial in tuner.ask(6):
        tuner.tell(trial, quadratic(trial.params))
    batch = tuner.ask(4)
    assert len(batch) == 4
    X = SPACE2.to_unit([t.params for t in batch])
    dists = np.linalg.norm(X[:, None] - X[None], axis=-1)[np.triu_indices(4, 1)]
    assert dists.min() > 1e-3
    assert all(t.status is Status.PENDING for t in batch)


def test_add_external_evaluation():
    tuner = Tuner(SPACE2, quadratic, seed=0)
    trial = tuner.add({"a": 0.3, "b": -1.0}, 0.0)
    assert trial.source == "user" and trial.status is Status.COMPLETE
    res = tuner.run(8)
    assert res.x == {"a": 0.3, "b": -1.0}


@pytest.mark.parametrize("acquisition", ["ei", "nei", "pi", "lcb", "thompson"])
def test_every_acquisition_runs_and_improves_on_the_design(acquisition):
    res = bt.minimize(quadratic, SPACE2, 14, seed=0, acquisition=acquisition, n_initial=6)
    design_best = min(t.value for t in res.history[:6])
    assert res.fun <= design_best
    assert all(t.source.startswith(("design", "gp:" + acquisition)) for t in res.history)


def test_fully_bayesian_campaign():
    config = bt.SurrogateConfig(fully_bayesian=True, n_samples=4, mcmc_steps=40)
    res = bt.minimize(quadratic, SPACE2, 10, seed=0, n_initial=6, surrogate=config)
    assert len(res.surrogate.posteriors) == 4
    assert res.fun < 0.5
