"""Early stopping: ASHA decisions, trial handles in every executor, mixed spaces end to end."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import bayestune as bt
from bayestune import ASHA, Categorical, Integer, Real, Space, Status, TrialStopped, Tuner
from bayestune.scheduler import epochs_used, wants_trial_handle


def test_rungs_and_validation():
    assert ASHA(1, 27, 3).rungs == [1, 3, 9]
    assert ASHA(2, 100, 4).rungs == [2, 8, 32]
    assert ASHA(1, 1, 2).rungs == []
    with pytest.raises(bt.BayestuneError, match="reduction_factor must be an integer >= 2"):
        ASHA(1, 27, 1)
    with pytest.raises(bt.BayestuneError, match="max_resource must be >= min_resource"):
        ASHA(5, 2)


def test_asha_promotes_the_best_fraction_at_each_rung():
    asha = ASHA(1, 27, 3)
    # rung 0 (step 1): n values recorded, the best max(1, n // 3) continue
    assert asha.report(0, 1, 0.50)          # alone: continues
    assert not asha.report(1, 1, 0.70)      # 2 values, best 1 continues
    assert asha.report(2, 1, 0.40)          # new best
    assert not asha.report(3, 1, 0.45)
    assert not asha.report(4, 1, 0.60)
    assert asha.report(5, 1, 0.42)          # 6 values: the best 2 continue (0.40, 0.42)
    assert asha.rung_values(0) == {0: 0.5, 1: 0.7, 2: 0.4, 3: 0.45, 4: 0.6, 5: 0.42}
    # reports between rungs are not judged
    assert asha.report(0, 2, 0.9)
    # rung 1 (step 3)
    assert asha.report(0, 3, 0.30)
    assert not asha.report(2, 3, 0.35)
    # a report that jumps past several rungs is judged at each of them in turn
    assert asha.report(6, 10, 0.10)
    assert asha.rung_values(1)[6] == 0.10 and asha.rung_values(2) == {6: 0.10}
    # past the last rung nothing stops a trial
    assert asha.report(6, 27, 5.0)


def test_asha_nan_is_the_worst_value_and_replay_rebuilds_the_rungs():
    asha = ASHA(1, 9, 3)
    asha.report(0, 1, 0.5)
    assert not asha.report(1, 1, math.nan)
    assert asha.rung_values(0)[1] == math.inf
    again = ASHA(1, 9, 3)
    again.replay({0: [(1, 0.5), (3, 0.4)], 1: [(1, math.inf)]})
    assert again.rung_values(0) == asha.rung_values(0)
    assert again.rung_values(1) == {0: 0.4}


# ----------------------------------------------------------------- synthetic learning curves
def curve(params, epoch):
    """Validation loss after ``epoch`` epochs: decays to a floor set by the parameters."""
    floor = (math.log10(params["lr"]) + 2.0) ** 2 + 0.3 * (params["depth"] - 4) ** 2
    floor += 0.0 if params["optimizer"] == "adam" else 1.5
    return floor + 3.0 * math.exp(-epoch / 4.0)


SPACE = Space([Real("lr", 1e-4, 1.0, log=True), Integer("depth", 2, 6),
               Categorical("optimizer", ["sgd", "adam", "rmsprop"])])


def train(params, trial):
    assert isinstance(params["depth"], int) and 2 <= params["depth"] <= 6
    assert params["optimizer"] in ("sgd", "adam", "rmsprop")
    loss = math.nan
    for epoch in range(1, 28):
        loss = curve(params, epoch)
        trial.report(epoch, loss)
        if trial.should_stop():
            break
    return loss


def test_asha_campaign_stops_bad_trials_and_fits_the_gp_at_a_common_budget(tmp_path):
    store = tmp_path / "asha.sqlite"
    tuner = Tuner(SPACE, train, seed=1, store=store, scheduler=ASHA(1, 27, 3))
    res = tuner.run(30)
    hist = tuner.history
    stopped = [t for t in hist if "stopped_at" in t.info]
    full = [t for t in hist if t.reports and t.reports[-1][0] == 27]
    assert stopped and full
    assert all(t.info["stopped_at"] in (1, 3, 9) for t in stopped)
    assert all(len(t.reports) == t.info["stopped_at"] for t in stopped)
    assert epochs_used(hist) < 0.5 * 30 * 27
    # the recommendation ran the full budget and is near the optimum (lr 1e-2, depth 4, adam)
    assert res.x["optimizer"] == "adam"
    assert abs(math.log10(res.x["lr"]) + 2.0) < 0.5 and abs(res.x["depth"] - 4) <= 1
    # the surrogate was fitted to the values at one budget
    model = tuner.model_history()
    budgets = {t.number: t.value for t in model.completed}
    assert len(budgets) >= SPACE.n_columns + 1
    # reports are in the store and survive a restart (the rungs are rebuilt from them)
    with Tuner(SPACE, train, seed=1, store=store, scheduler=ASHA(1, 27, 3)) as again:
        assert [t.reports for t in again.history] == [t.reports for t in hist]
        assert again.scheduler is not None


def test_categorical_that_matters_is_learned_and_proposals_are_valid():
    def objective(p):
        assert p["optimizer"] in ("sgd", "adam", "rmsprop") and isinstance(p["depth"], int)
        return curve(p, 100)

    tuner = Tuner(SPACE, objective, seed=4)
    res = tuner.run(28)
    assert res.x["optimizer"] == "adam"
    late = [t.params["optimizer"] for t in tuner.history[-10:]]
    assert late.count("adam") >= 6


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_trial_handles_work_in_worker_threads_and_processes(executor):
    options = {"n_workers": 2}
    if executor == "threads":
        options["executor"] = ThreadPoolExecutor(2)
    tuner = Tuner(SPACE, train, seed=2, scheduler=ASHA(1, 27, 3))
    tuner.run(10, **options)
    hist = tuner.history
    assert all(t.reports for t in hist.completed)
    assert any("stopped_at" in t.info for t in hist)
    assert all(t.status is Status.COMPLETE for t in hist)


def nan_midway(params, trial):
    for epoch in range(1, 10):
        loss = math.nan if params["optimizer"] == "sgd" and epoch >= 3 else curve(params, epoch)
        trial.report(epoch, loss)
        if trial.should_stop():
            raise TrialStopped
    return loss


def test_nan_reported_mid_training_fails_only_that_trial():
    tuner = Tuner(SPACE, nan_midway, seed=3, scheduler=ASHA(1, 9, 3))
    tuner.run(14)
    hist = tuner.history
    sgd = [t for t in hist if t.params["optimizer"] == "sgd"]
    assert sgd, "the design has sgd points"
    for t in sgd:
        if t.status is Status.FAILED:
            assert "non-finite" in t.error
            assert any(v == math.inf for _, v in t.reports)
        else:  # stopped at the first rung, before the NaN
            assert t.info["stopped_at"] < 3
    others = [t for t in hist if t.params["optimizer"] != "sgd"]
    assert all(t.status is Status.COMPLETE for t in others)


def test_trial_handle_without_a_scheduler_only_records():
    def objective(params, trial):
        for epoch in (1, 2, 3):
            trial.report(epoch, 1.0 / epoch)
            assert not trial.should_stop()
        return 1.0 / 3

    assert wants_trial_handle(objective) and not wants_trial_handle(lambda p: 1.0)
    tuner = Tuner(SPACE, objective, seed=0)
    tuner.run(3)
    assert [t.reports for t in tuner.history] == [((1, 1.0), (2, 0.5), (3, 1 / 3))] * 3


def test_stop_when_ends_a_campaign_on_a_total_budget():
    tuner = Tuner(SPACE, train, seed=5, scheduler=ASHA(1, 27, 3))
    tuner.run(1000, stop_when=lambda h: epochs_used(h) >= 120)
    used = epochs_used(tuner.history)
    assert 120 <= used < 120 + 27
    assert tuner.history.n_finished < 1000


def test_report_validation():
    from bayestune.scheduler import TrialHandle

    handle = TrialHandle(0, {})
    with pytest.raises(bt.BayestuneError, match="step must be a finite number >= 0"):
        handle.report(-1, 0.5)
    with pytest.raises(bt.BayestuneError, match="scheduler must be an ASHA instance"):
        Tuner(SPACE, train, scheduler="asha")
    assert np.isfinite(curve({"lr": 0.01, "depth": 4, "optimizer": "adam"}, 1))


def test_multifidelity_engine_sees_every_budget_and_proposes_at_full_budget():
    from bayestune.engines import FixedColumnPosterior, MultiFidelityGPEngine

    tuner = Tuner(SPACE, train, seed=6, scheduler=ASHA(3, 27, 3))
    tuner.run(14)
    engine = tuner._engine(tuner.history)
    assert isinstance(engine, MultiFidelityGPEngine)
    assert [engine.budget_coordinate(b) for b in (3, 9, 27)] == [0.0, 0.5, 1.0]
    X, y, _ = engine._training_data(tuner.history)
    reached = sum(1 + sum(step >= r for r in (9, 27) for step in [t.reports[-1][0]])
                  for t in tuner.history.completed)
    assert X.shape == (reached, SPACE.n_columns + 1) and len(y) == reached
    assert set(np.round(X[:, -1], 6)) <= {0.0, 0.5, 1.0}
    assert all(t.source.startswith("gp-mf:") for t in tuner.history[SPACE.n_columns + 2:]
               if t.source != "user" and not t.source.startswith("design"))

    posts = engine._posteriors(tuner.history, np.random.default_rng(0))
    inner = engine.surrogate.posteriors[0]
    U = np.random.default_rng(1).uniform(size=(4, SPACE.n_columns))
    mu, var = posts[0].predict(U)
    mu_full, var_full = inner.predict(np.hstack([U, np.ones((4, 1))]))
    np.testing.assert_allclose(mu, mu_full) and np.testing.assert_allclose(var, var_full)
    # gradients with respect to the configuration columns, by finite differences
    _, _, dmu, _ = posts[0].predict_with_grad(U[:1])
    eps = 1e-6
    for j in range(SPACE.n_columns):
        step = np.zeros_like(U[:1])
        step[0, j] = eps
        fd = (posts[0].predict(U[:1] + step)[0] - posts[0].predict(U[:1] - step)[0]) / (2 * eps)
        assert dmu[0, j] == pytest.approx(fd[0], rel=1e-3, abs=1e-6)
    assert isinstance(posts[0].fantasize(U[:1]), FixedColumnPosterior)
