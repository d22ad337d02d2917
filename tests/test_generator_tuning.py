"""The generator-tuning method: a hard budget, a stage log, resume by identity, options."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bayestune as bt
from bayestune.hep import (
    ExploreStage,
    GeneratorTuning,
    HistogramObjective,
    ProbeStage,
    RefineStage,
    tune_generator,
)
from bayestune.hep.tuning import Budget, plan_budget
from bayestune.hep.tuning.budget import BudgetExhausted
from bayestune.testfunctions import GaussianPeakSimulator

SPACE = bt.Space([bt.Real("mean", -1.0, 1.0), bt.Real("width", 0.5, 2.0)])
TRUTH = {"mean": 0.3, "width": 1.1}
# a small method for two parameters: 16 runs to explore with the GP, rounds of 8
FAST = GeneratorTuning(explore=ExploreStage(runs=16, engine="gp"),
                       refine=RefineStage(n_per_round=8))


class Counting:
    """A simulator that counts its calls and the points it was called at."""

    def __init__(self, sim, fail_mean_above=None):
        self.sim, self.calls, self.points = sim, 0, []
        self.n_events = sim.n_events
        self.fail_mean_above = fail_mean_above

    def __call__(self, params):
        self.calls += 1
        self.points.append((params["mean"], params["width"]))
        if self.fail_mean_above is not None and params["mean"] > self.fail_mean_above:
            raise RuntimeError(f"the generator crashed at mean={params['mean']}")
        return self.sim(params)


def _objective(seed, fail_mean_above=None):
    sim = GaussianPeakSimulator(n_events=5_000, seed=seed)
    pseudo = sim.replicate(seed=10_000 + seed, n_events=20_000)(TRUTH)
    counting = Counting(sim, fail_mean_above)
    return HistogramObjective(counting, pseudo, keep_pulls=False, keep_bins=True), counting


def test_the_budget_counts_every_run_of_every_stage():
    objective, sim = _objective(1)
    res = tune_generator(objective, SPACE, 48, method=FAST, seed=1)
    assert sim.calls == res.n_runs == 48 == len(res.result.history)
    assert res.n_events == 48 * 5_000
    assert sum(s.runs for s in res.stages) == 48
    assert [s.stage for s in res.stages][0] == "explore" and res.stages[-1].stage == "final-fit"
    assert "of a budget of 48, 240,000 events" in res.stage_log()
    sources = [t.source for t in res.result.history]  # each run labelled by its stage
    assert not any(s.startswith(("refine:", "probe:")) for s in sources[:16])
    assert all(s.startswith(("refine:", "probe:")) for s in sources[16:])
    for name in ("mean", "width"):  # a calibrated estimate: within 3.5 errors
        assert abs(res.estimate[name] - TRUTH[name]) < 3.5 * res.errors[name]


class _Sized:
    """A simulator that logs the events of every run it makes (its replicas share the log)."""

    def __init__(self, sim, log=None):
        self.sim, self.n_events = sim, sim.n_events
        self.log = [] if log is None else log

    def replicate(self, *, seed=None, n_events=None):
        return _Sized(self.sim.replicate(seed=seed, n_events=n_events), self.log)

    def __call__(self, params):
        self.log.append(self.n_events)
        return self.sim(params)


def test_the_explore_stage_may_run_fewer_events_and_the_tune_counts_them(tmp_path):
    sim = GaussianPeakSimulator(n_events=5_000, seed=5)
    pseudo = sim.replicate(seed=10_005, n_events=20_000)(TRUTH)
    sized = _Sized(sim)
    objective = HistogramObjective(sized, pseudo, keep_pulls=False, keep_bins=True)
    method = GeneratorTuning(explore=ExploreStage(runs=16, engine="gp", events=1_000),
                             refine=RefineStage(n_per_round=8))
    store = tmp_path / "ramp.sqlite"
    res = tune_generator(objective, SPACE, 48, method=method, seed=5, store=store)
    assert sized.log == [1_000] * 16 + [5_000] * 32
    assert res.n_runs == 48 and res.n_events == 16 * 1_000 + 32 * 5_000
    assert "176,000 events" in res.stage_log()
    for name in ("mean", "width"):
        assert abs(res.estimate[name] - TRUTH[name]) < 3.5 * res.errors[name]
    again = tune_generator(objective, SPACE, 48, method=method, seed=5, store=store)
    assert len(sized.log) == 48  # resumed: no new run
    assert again.n_events == res.n_events and again.estimate == res.estimate
    with pytest.raises(bt.StoreError, match="other generator-tuning options"):
        tune_generator(objective, SPACE, 48, method=FAST, seed=5, store=store)
    plain, _ = _objective(5)  # a simulator that cannot make runs of another size
    with pytest.raises(ValueError, match=r"explore.events=1000 .*Counting has no replicate"):
        tune_generator(plain, SPACE, 48, method=method, seed=5)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=f"explore.events={bad!r}"):
            ExploreStage(events=bad)


def test_failed_runs_are_charged_and_recorded():
    objective, sim = _objective(2, fail_mean_above=0.8)
    res = tune_generator(objective, SPACE, 48, method=FAST, seed=2)
    failed = res.result.history.failed
    assert failed and all("crashed" in t.error for t in failed)
    assert sim.calls == res.n_runs == 48


def test_plan_budget_and_bad_options_name_the_value():
    assert plan_budget(80, 4, GeneratorTuning()) == (32, 6)
    assert plan_budget(60, 4, GeneratorTuning(explore=ExploreStage(runs=28))) == (28, 4)
    with pytest.raises(ValueError, match="n_evals=20 is too small"):
        plan_budget(20, 4, GeneratorTuning())
    # the smallest budget that works with the given explore share is named, and works
    with pytest.raises(ValueError, match="n_evals >= 134"):
        plan_budget(110, 10, GeneratorTuning())
    assert plan_budget(134, 10, GeneratorTuning()) == (54, 4)
    # the first round's plain fit needs a quadratic's coefficients (231 for 20 parameters)
    # among the explore stage's runs and its own 40
    with pytest.raises(ValueError, match="193 runs to explore.*n_evals >= 433"):
        plan_budget(400, 20, GeneratorTuning())
    with pytest.raises(ValueError, match="explore.fraction=1.5"):
        ExploreStage(fraction=1.5)
    with pytest.raises(ValueError, match="refine.max_extent=0"):
        RefineStage(max_extent=0)
    with pytest.raises(ValueError, match="probe.enabled=1"):
        ProbeStage(enabled=1)
    with pytest.raises(ValueError, match="refine.replica_noise='mc'"):
        RefineStage(replica_noise="mc")
    with pytest.raises(ValueError, match="refine.mc_part='bootstrap'"):
        RefineStage(mc_part="bootstrap")
    with pytest.raises(ValueError, match="refine.unsettled_step=0"):
        RefineStage(unsettled_step=0)
    with pytest.raises(ValueError, match=r"refine.final_noise must be a number in \[0.0, 1.0\], "
                       "got refine.final_noise=1.5"):
        RefineStage(final_noise=1.5)
    with pytest.raises(ValueError, match=r"refine.walk_noise must be a number in \[0.0, 1.0\], "
                       "got refine.walk_noise=-0.5"):
        RefineStage(walk_noise=-0.5)
    with pytest.raises(ValueError, match="refine.final_replicas must be an integer >= 2, "
                       "got refine.final_replicas=1"):
        RefineStage(final_replicas=1)
    with pytest.raises(ValueError, match=r"refine.final_scale must be a number in \[1.0, 10.0\], "
                       "got refine.final_scale=0.5"):
        RefineStage(final_scale=0.5)
    with pytest.raises(ValueError, match="explore.engine='cma'"):
        ExploreStage(engine="cma")
    with pytest.raises(ValueError, match="explore.acquisition='lcb'"):
        ExploreStage(acquisition="lcb")
    with pytest.raises(ValueError, match="explore.initial_fraction=1.2"):
        ExploreStage(initial_fraction=1.2)
    # the explore stage's space-filling design: half its runs, at least the tuner's max(5, 2k)
    assert ExploreStage().design_size(32, 4) == 16
    assert ExploreStage(initial_fraction=0.1).design_size(32, 4) == 8
    assert ExploreStage(n_initial=12).design_size(32, 4) == 12
    assert ExploreStage(initial_fraction=1.0).design_size(6, 4) == 6
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['widht'\] of the refine"):
        GeneratorTuning.from_dict({"refine": {"widht": 3}})
    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['polish'\]"):
        GeneratorTuning.from_dict({"polish": {}})
    with pytest.raises(ValueError, match="n_evals=0"):
        Budget(0)
    budget = Budget(2)
    budget.spend(2)
    with pytest.raises(BudgetExhausted, match="budget of 2"):
        budget.spend(1)
    method = GeneratorTuning.from_dict({"probe": {"enabled": False}, "explore": {"runs": 20}})
    assert GeneratorTuning.from_dict(method.to_dict()) == method
    objective, _ = _objective(1)
    objective.keep_bins = False
    with pytest.raises(ValueError, match="keep_bins=True"):
        tune_generator(objective, SPACE, 48, method=FAST)


def test_a_resumed_tune_reuses_its_evaluations_by_identity(tmp_path):
    """A tune stopped in its second round resumes without evaluating a finished point
    again, also when the stored points differ from the recomputed plan in the last digits
    (another machine's round-off); a store made with other options is refused."""
    store = tmp_path / "tune.sqlite"
    objective, sim = _objective(3)

    finished = []

    def stop_in_round_two(trial):  # the third evaluation of the second local round
        finished.append(trial)
        if len(finished) == 16 + 8 + 3:
            assert trial.source.startswith(("refine:", "probe:"))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune_generator(objective, SPACE, 48, method=FAST, seed=3, store=store,
                       callback=stop_in_round_two)
    first_points = set(sim.points)
    assert sim.calls == 16 + 8 + 3
    with sqlite3.connect(store) as conn:  # another machine's round-off
        for number, text in conn.execute(
                "SELECT number, params FROM trials WHERE source LIKE 'refine:%' "
                "OR source LIKE 'probe:%'").fetchall():
            params = {k: v + 3e-7 * (0.5 * (SPACE[k].low + SPACE[k].high) - v)
                      for k, v in json.loads(text).items()}  # stays inside the bounds
            conn.execute("UPDATE trials SET params = ? WHERE number = ?",
                         (json.dumps(params), number))
    objective, sim = _objective(3)
    res = tune_generator(objective, SPACE, 48, method=FAST, seed=3, store=store)
    assert sim.calls == 48 - 27  # only what the first run had not finished
    assert not set(sim.points) & first_points
    assert res.n_runs == 48 and len(res.result.history) == 48
    objective, sim = _objective(3)
    again = tune_generator(objective, SPACE, 48, method=FAST, seed=3, store=store)
    assert sim.calls == 0 and again.estimate == pytest.approx(res.estimate, rel=1e-6)
    other = GeneratorTuning(explore=ExploreStage(runs=16, engine="gp"),
                            refine=RefineStage(n_per_round=8, width=10.0))
    with pytest.raises(bt.StoreError, match="other generator-tuning options"):
        tune_generator(objective, SPACE, 48, method=other, seed=3, store=store)
    # another MC part of the final covariance plans the same runs: the store resumes, the
    # estimate is the same minimum and only the covariance's MC part differs
    reported = GeneratorTuning(explore=ExploreStage(runs=16, engine="gp"),
                               refine=RefineStage(n_per_round=8, mc_part="extrapolated"))
    third = tune_generator(objective, SPACE, 48, method=reported, seed=3, store=store)
    assert sim.calls == 0
    assert third.estimate == pytest.approx(res.estimate, rel=1e-4, abs=1e-6)
    assert np.allclose(third.uncertainty.covariance_hessian, res.uncertainty.covariance_hessian,
                       rtol=1e-3)
    parts = [np.diag(r.uncertainty.covariance_surrogate) for r in (res, third)]
    assert not np.allclose(*parts, rtol=0.05), parts
    with pytest.raises(bt.StoreError, match="other generator-tuning options"):
        tune_generator(objective, SPACE, 56, method=FAST, seed=3, store=store)


KILLED = textwrap.dedent("""
    import os, signal, sys
    import bayestune as bt
    from bayestune.hep import ExploreStage, GeneratorTuning, HistogramObjective, RefineStage
    from bayestune.hep import tune_generator
    from bayestune.testfunctions import GaussianPeakSimulator

    store, kill_at, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sim = GaussianPeakSimulator(n_events=5_000, seed=4)
    pseudo = sim.replicate(seed=10_004, n_events=20_000)({"mean": 0.3, "width": 1.1})
    calls = []

    def simulate(params):
        calls.append(1)
        if len(calls) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        with open(log, "a") as f:
            f.write(f"{params['mean']!r} {params['width']!r}\\n")
        return sim(params)

    objective = HistogramObjective(simulate, pseudo, keep_pulls=False, keep_bins=True)
    space = bt.Space([bt.Real("mean", -1.0, 1.0), bt.Real("width", 0.5, 2.0)])
    method = GeneratorTuning(explore=ExploreStage(runs=16, engine="gp"),
                             refine=RefineStage(n_per_round=8))
    res = tune_generator(objective, space, 40, method=method, seed=4, store=store)
    print(res.n_runs, len(calls))
""")


def test_kill_minus_9_in_the_middle_of_a_round_loses_nothing(tmp_path):
    script = tmp_path / "tune.py"
    script.write_text(KILLED)
    store, log = tmp_path / "tune.sqlite", tmp_path / "points.txt"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    killed = subprocess.run([sys.executable, str(script), str(store), "21", str(log)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr
    assert len(log.read_text().splitlines()) == 20  # 16 explored, 4 of round 1
    done = subprocess.run([sys.executable, str(script), str(store), "0", str(log)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["40", "20"]  # the killed point again, and 19 new ones
    points = log.read_text().splitlines()
    assert len(points) == 40 and len(set(points)) == 40  # no finished point ran twice


def test_closure_strategies_and_the_keywords_of_earlier_releases():
    from bayestune.closure import PseudoDataOptions, closure_test
    from bayestune.strategies import CompositeTuning, SurrogateTuning, as_strategy

    assert as_strategy() == SurrogateTuning()
    assert as_strategy("quadratic", refine_rounds=2) == SurrogateTuning(surface="quadratic",
                                                                       refine_rounds=2)
    assert as_strategy("composite") == CompositeTuning()
    binwise = as_strategy("binwise", refine_rounds=4, n_evals=60, k=4)
    assert plan_budget(60, 4, binwise) == (28, 4)  # exactly the rounds asked for
    with pytest.raises(ValueError, match="refine_rounds >= 1"):
        as_strategy("binwise", refine_rounds=0)
    with pytest.raises(ValueError, match="estimator must be one of"):
        as_strategy("professor")
    with pytest.raises(ValueError, match="surface='spline'"):
        SurrogateTuning(surface="spline")
    sim = GaussianPeakSimulator(n_events=2_000, seed=1)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['n_boostrap'\]"):
        closure_test(sim, SPACE, TRUTH, n_boostrap=3)
    with pytest.raises(ValueError, match="not also as"):
        closure_test(sim, SPACE, TRUTH, pseudo=PseudoDataOptions(seed=3), pseudo_seed=4)
    with pytest.raises(ValueError, match="either method= or the keywords"):
        closure_test(sim, SPACE, TRUTH, method=FAST, estimator="binwise")
    with pytest.raises(ValueError, match="tuning strategy"):
        closure_test(sim, SPACE, TRUTH, method="binwise")


def test_an_unsettled_estimate_carries_the_walks_last_step():
    from bayestune.hep.tuning.refine import with_extra_covariance
    from bayestune.uncertainty import Uncertainty

    unc = Uncertainty(x={"a": 1.0, "b": 2.0}, errors={"a": 0.1, "b": 0.2},
                      covariance=np.diag([0.01, 0.04]), names=["a", "b"], fun=3.0,
                      fun_std=0.5, errordef=1.0, valid=True, hessian_positive_definite=True,
                      at_limit=[])
    step = np.array([0.3, -0.4])
    wider = with_extra_covariance(unc, np.outer(step, step))
    assert wider.errors["a"] == pytest.approx(np.hypot(0.1, 0.3))
    assert wider.errors["b"] == pytest.approx(np.hypot(0.2, 0.4))
    assert wider.covariance[0, 1] == pytest.approx(-0.12) and wider.x == unc.x


class _Bowl:
    """A stand-in for a debiased fit whose design is trusted inside the unit disc."""

    max_leverage = 1.0

    @staticmethod
    def leverage(x):
        return float(np.sum(np.asarray(x) ** 2))


def test_a_trusted_step_stops_on_the_leverage_wall():
    from bayestune.hep.tuning.regions import trusted_step

    start = np.zeros(2)
    # a minimum beyond the wall: the step goes towards it and stops on the wall
    step = trusted_step(_Bowl(), start, np.array([3.0, 4.0]))
    assert np.allclose(step, [0.6, 0.8], atol=1e-6) and _Bowl.leverage(step) <= 1.0
    # a minimum the design trusts is the step itself
    assert np.array_equal(trusted_step(_Bowl(), start, np.array([0.3, -0.2])), [0.3, -0.2])


def test_a_region_grows_towards_a_minimum_beyond_it_not_across():
    from bayestune.hep.tuning.regions import stretched

    span = np.array([1.0, 10.0, 0.1])
    axes = np.diag([0.05, 0.5, 0.002])  # 5 %, 5 % and 2 % of the ranges
    # the minimum lies along the second parameter: only that reach doubles
    grown = stretched(axes, np.array([0.0, 3.0, 0.0]), span, max_extent=0.2)
    np.testing.assert_allclose(grown, np.diag([0.05, 1.0, 0.002]))
    # along a diagonal (in units of the ranges) of the first two: the region's reach along
    # it doubles, across it and along the third it stays
    d = np.array([0.1, 1.0, 0.0])
    grown = stretched(axes, d, span, max_extent=0.2)
    u = (d / span) / np.linalg.norm(d / span)
    unit = grown / span[:, None]
    np.testing.assert_allclose(u @ unit, 2.0 * (u @ (axes / span[:, None])))
    across = np.array([u[1], -u[0], 0.0])
    np.testing.assert_allclose(across @ unit, across @ (axes / span[:, None]), atol=1e-15)
    np.testing.assert_allclose(grown[:, 2], axes[:, 2])
    # no direction: every axis doubles; a long axis stops at max_extent of its range
    np.testing.assert_allclose(stretched(axes, np.zeros(3), span, 0.2),
                               np.diag([0.1, 1.0, 0.004]))
    np.testing.assert_allclose(stretched(np.diag([0.15, 0.5, 0.002]), np.array([1.0, 0, 0]),
                                         span, 0.2), np.diag([0.2, 0.5, 0.002]))


def test_a_region_across_a_bound_is_shifted_inside_not_cut():
    from bayestune.hep.tuning.regions import inside_box

    lo, hi = np.array([0.0, 0.2]), np.array([2.0, 2.0])
    axes = np.array([[0.3, -0.06], [0.2, 0.09]])  # a rotated region, half-extents 0.36, 0.29
    centre = np.array([2.0, 1.0])  # on the upper bound of the first parameter
    moved = inside_box(centre, axes, lo, hi)
    np.testing.assert_allclose(moved, [2.0 - 0.36, 1.0])
    corners = moved + np.array([[a, b] for a in (-1, 1) for b in (-1, 1)]) @ axes.T
    assert np.all(corners >= lo - 1e-12) and np.all(corners <= hi + 1e-12)
    assert np.isclose(corners[:, 0].max(), 2.0)  # the design still reaches the bound
    # a region already inside stays; one wider than the box sits in its middle
    np.testing.assert_array_equal(inside_box(np.array([1.0, 1.0]), axes, lo, hi), [1.0, 1.0])
    wide = inside_box(np.array([1.9, 1.0]), np.diag([1.5, 0.1]), lo, hi)
    np.testing.assert_allclose(wide, [1.0, 1.0])


def test_a_store_made_before_an_option_existed_resumes_with_what_it_planned():
    from bayestune.hep.tuning.method import _planning

    def identity(**refine):
        return {"method": GeneratorTuning(refine=RefineStage(**refine)).to_dict(),
                "n_evals": 80}

    old = identity(design="region", mc_part="replicas", replica_bounds="box")
    for added in ("design", "plausible_sd", "replica_bounds", "final_noise", "walk_noise",
                  "final_replicas"):
        del old["method"]["refine"][added]
    assert _planning(old) == _planning(identity(design="region"))
    del old["method"]["explore"]["events"]  # made before explore.events: full-size runs
    assert _planning(old) == _planning(identity(design="region"))
    assert _planning(old) != _planning(identity(design="plausible"))
    assert _planning(old) != _planning(identity(design="region", walk_noise=0.0))
    # options that plan no run may differ
    assert _planning(old) == _planning(identity(design="region", mc_part="corrected",
                                                replica_bounds="wall", final_noise=0.0,
                                                final_replicas=200))


class _Valley:
    """A chi2 valley along a = b (floor 100, walls rising 400 per unit across), known
    exactly (sd 0)."""

    @staticmethod
    def chi2_many(points):
        p = np.asarray(points)
        return 100.0 + 400.0 * (p[:, 0] - p[:, 1]) ** 2 + 0.1 * p[:, 0] ** 2, np.zeros(len(p))


def test_a_plausible_design_follows_the_valley_and_fills_what_earlier_runs_left():
    from bayestune.hep.tuning.regions import plausible_design

    lo, hi = np.full(2, -5.0), np.full(2, 5.0)
    axes, centre = np.diag([2.0, 2.0]), np.zeros(2)
    # plausible: within 3 sd (one run's chi2 noise 10) of the region's lowest chi2
    points, n_plausible = plausible_design(_Valley(), centre, axes, 8, np.empty((0, 2)),
                                           10.0, 3.0, lo, hi, np.random.default_rng(1))
    assert points.shape == (8, 2) and 0 < n_plausible < 4096 // 4  # most of the box is wall
    rise = _Valley.chi2_many(points)[0] - 100.0
    assert np.all(rise <= 30.0 + 1e-9)  # no point on the walls
    along = points @ np.array([1.0, 1.0]) / np.sqrt(2.0)
    assert np.ptp(along) > 4.0  # spread along the valley (its length in the region: 5.7)
    # the same generator state gives the same design
    again, _ = plausible_design(_Valley(), centre, axes, 8, np.empty((0, 2)), 10.0, 3.0, lo,
                                hi, np.random.default_rng(1))
    np.testing.assert_array_equal(points, again)
    # with earlier runs on one half of the valley, a round goes to the other half first
    earlier = np.column_stack([np.linspace(0.2, 2.0, 10)] * 2)
    more, _ = plausible_design(_Valley(), centre, axes, 4, earlier, 10.0, 3.0, lo, hi,
                               np.random.default_rng(2))
    assert np.all(more.sum(axis=1) < 0.0)
    # a narrow region keeps the most plausible candidates
    few, n_few = plausible_design(_Valley(), centre, axes, 8, np.empty((0, 2)), 1e-3, 0.5,
                                  lo, hi, np.random.default_rng(3))
    assert n_few < 32 and few.shape == (8, 2)


def test_the_tune_is_written_as_pythia_settings_with_eigentunes(tmp_path):
    from bayestune.hep import read_yoda
    from bayestune.hep.tunefiles import read_cmnd, write_cmnd

    objective, _ = _objective(1)
    res = tune_generator(objective, SPACE, 48, method=FAST, seed=1)
    files = res.write_tune(tmp_path / "tune", delta=4.0,
                           fixed={"Tune:ee": 7, "HadronLevel:all": True})
    tune = read_cmnd(files.tune)
    assert tune["Tune:ee"] == "7" and tune["HadronLevel:all"] == "on"
    for name in ("mean", "width"):
        assert float(tune[name]) == pytest.approx(res.estimate[name], rel=1e-12)
    assert "48 generator runs, 240,000 events" in files.tune.read_text()
    assert len(files.eigentunes) == 2
    surface = res.uncertainty.surface
    for plus, minus in files.eigentunes:
        for path in (plus, minus):  # each eigentune: the fit's chi2 risen by delta
            point = read_cmnd(path)
            chi2 = surface(float(point["mean"]), float(point["width"]))
            assert chi2 - res.uncertainty.fun == pytest.approx(4.0, abs=0.05)
    summary = json.loads(files.summary.read_text())
    assert summary["eigentune_delta"] == 4.0 and summary["runs"] == 48
    predicted = read_yoda(files.predictions)
    assert set(predicted) == {h.name for h in objective.reference.values()}
    with pytest.raises(ValueError, match="not a Pythia setting name"):
        write_cmnd({"bad name": 1.0}, tmp_path / "x.cmnd")


def test_the_probe_line_fit_copes_with_bins_left_empty_by_runs():
    """Runs of few events leave tail bins empty (value and MC error 0), in some runs or in
    all: the line's fits weight an empty bin like its least-filled run, so the probe's
    chi2 along the line stays finite (a zero error once made the weights infinite)."""
    from bayestune.hep.binfits import filled_errors
    from bayestune.hep.tuning.probe import line_minimum
    from bayestune.history import Trial
    from bayestune.objective import Status

    np.testing.assert_array_equal(filled_errors(np.array([[0.0, 0.0, 2.0], [0.5, 0.0, 1.0]])),
                                  [[0.5, 1.0, 2.0], [0.5, 1.0, 1.0]])
    sim = GaussianPeakSimulator(n_events=2_000, seed=3)
    objective = HistogramObjective(sim, sim.replicate(seed=4, n_events=8_000)(TRUTH),
                                   keep_pulls=False, keep_bins=True)
    trials = []
    for i, mean in enumerate(np.linspace(-0.6, 0.9, 8)):
        ev = objective({"mean": float(mean), "width": 1.1})
        # as a histogram of few events reports them: the last bin empty in every run, the
        # first in every other run
        bins = {}
        for name, (values, errors) in ev.info["bins"].items():
            values, errors = np.array(values, dtype=float), np.array(errors, dtype=float)
            values[-1] = errors[-1] = 0.0
            if i % 2:
                values[0] = errors[0] = 0.0
            bins[name] = (values.tolist(), errors.tolist())
        trials.append(Trial(i, {"mean": float(mean), "width": 1.1}, Status.COMPLETE,
                            ev.value, ev.variance, info={**ev.info, "bins": bins}))
    dims = [d for d in SPACE if d.name in ("mean", "width")]
    jac = np.ones((objective.used_bins().data.size, 1))
    found = line_minimum(trials, dims, np.array([0.0, 1.1]), np.array([1.0, 0.0]), jac,
                         objective)
    assert found is not None
    step, _, gain, gain_sd = found
    assert np.isfinite([step, gain, gain_sd]).all() and -0.6 <= step <= 0.9


def _tune_recording_uncertainty_calls(monkeypatch, refine: RefineStage):
    """A 48-run tune with ``refine`` (16 runs to explore) and the noise share and number of
    replicas of every ``BinwiseModel.uncertainty`` call it made, in order; the budget is
    checked."""
    from bayestune.hep.binwise import N_REPLICAS, BinwiseModel

    shares = []
    original = BinwiseModel.uncertainty

    def spy(self, *args, **kwargs):
        shares.append((kwargs.get("noise", 1.0), kwargs.get("n_replicas", N_REPLICAS)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BinwiseModel, "uncertainty", spy)
    objective, sim = _objective(3)
    method = GeneratorTuning(explore=ExploreStage(runs=16, engine="gp"), refine=refine)
    res = tune_generator(objective, SPACE, 48, method=method, seed=3)
    assert sim.calls == res.n_runs == 48
    return res, shares


@pytest.mark.parametrize("walk_noise", [1.0, 0.0])
def test_the_rounds_are_placed_with_the_walks_share_of_the_fits_noise(monkeypatch, walk_noise):
    """``RefineStage.walk_noise``: the rounds' fits are minimised with that share of their
    noise subtracted, the final estimate with ``final_noise``'s (0); either way the budget
    holds and the estimate covers the truth."""
    res, calls = _tune_recording_uncertainty_calls(
        monkeypatch, RefineStage(n_per_round=8, walk_noise=walk_noise))
    shares = [noise for noise, _ in calls]
    # the rounds' fits (a round with too few runs for a debiased fit is placed by the plain
    # local fit, which subtracts nothing: 1, ignored), then the final fit's estimate
    assert (0.0 in shares[:-1]) == (walk_noise == 0.0) and shares[-1] == 0.0
    for name in ("mean", "width"):
        assert abs(res.estimate[name] - TRUTH[name]) < 3.5 * res.errors[name]


def test_the_final_estimate_takes_its_own_noise_share_whatever_the_walks(monkeypatch):
    """A final_noise other than walk_noise redoes the estimate even with the walk's MC part
    and bounds: walk_noise 0 with final_noise 1 ends on the debiased chi2's minimum."""
    _, calls = _tune_recording_uncertainty_calls(
        monkeypatch, RefineStage(n_per_round=8, walk_noise=0.0, final_noise=1.0,
                                 replica_bounds="box"))
    shares = [noise for noise, _ in calls]
    assert 0.0 in shares[:-1] and shares[-1] == 1.0


def test_the_final_covariance_takes_its_own_number_of_replicas(monkeypatch):
    """``RefineStage.final_replicas`` redoes the final estimate's MC part with that many
    replicas, even with the walk's other options; the rounds' fits keep the default."""
    from bayestune.hep.binwise import N_REPLICAS

    _, calls = _tune_recording_uncertainty_calls(
        monkeypatch, RefineStage(n_per_round=8, walk_noise=0.0, final_noise=0.0,
                                 replica_bounds="box", final_replicas=24))
    replicas = [n for _, n in calls]
    assert replicas[-1] == 24 and set(replicas[:-1]) <= {0, N_REPLICAS}
