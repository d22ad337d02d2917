"""One conformance suite over every proposal engine (bayestune's GP, skopt, GPyOpt)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from bayestune import CampaignStore, Categorical, Integer, Real, Space, Tuner
from bayestune.engines import GPyOptEngine, SkoptEngine
from bayestune.exceptions import BayestuneError

ENGINES = ["gp", "skopt", "gpyopt"]

MIXED = Space([Real("x", -2.0, 2.0), Real("lr", 1e-4, 1e-1, log=True), Integer("k", 1, 5),
               Categorical("opt", ["adamw", "ranger"])])


def objective(p):
    return ((p["x"] - 0.5) ** 2 + (math.log10(p["lr"]) + 2) ** 2 + 0.2 * (p["k"] - 3) ** 2
            + (0.0 if p["opt"] == "ranger" else 0.5))


@pytest.fixture(autouse=True)
def _quiet_peer_libraries():
    # GPyOpt and scikit-optimize emit deprecation and convergence warnings of their own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_runs_a_campaign_with_valid_points_and_a_store(engine, tmp_path):
    store = tmp_path / f"{engine}.sqlite"
    tuner = Tuner(MIXED, objective, store=store, seed=0, engine=engine, n_initial=6)
    res = tuner.run(14)
    hist = res.history
    assert len(hist.completed) == 14
    for t in hist:
        assert MIXED.validate(t.params) == t.params
    assert {t.source for t in hist[6:]} == {engine if engine != "gp" else "gp:ei"}
    design_best = min(t.value for t in hist[:6])
    assert res.fun <= design_best
    assert res.fun < 1.5
    # the campaign lives in the store and can be reopened
    assert len(CampaignStore(store, MIXED).history()) == 14


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_is_reproducible(engine):
    runs = []
    for _ in range(2):
        tuner = Tuner(MIXED, objective, seed=3, engine=engine, n_initial=5)
        tuner.run(8)
        runs.append([t.params for t in tuner.history])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_batch_proposals(engine):
    tuner = Tuner(MIXED, seed=1, engine=engine, n_initial=5)
    for t in tuner.ask(5):
        tuner.tell(t, objective(t.params))
    batch = tuner.ask(3)
    assert len(batch) == 3
    keys = {tuple(sorted(t.params.items())) for t in batch}
    assert len(keys) == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_skips_failed_trials(engine):
    calls = []

    def flaky(p):
        calls.append(p)
        if len(calls) % 3 == 0:
            raise ValueError("no convergence")
        return objective(p)

    res = Tuner(MIXED, flaky, seed=0, engine=engine, n_initial=5).run(11)
    assert res.n_failed == 3 and len(res.history.completed) == 8


def test_peer_engines_do_not_touch_the_global_numpy_state():
    np.random.seed(123)  # noqa: NPY002
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    for engine in ("skopt", "gpyopt"):
        Tuner(MIXED, objective, seed=0, engine=engine, n_initial=5).run(7)
    assert np.random.random() == expected  # noqa: NPY002


def test_gpyopt_domain_uses_log_coordinates():
    engine = GPyOptEngine(MIXED)
    domain = engine._domain()
    assert domain[1]["domain"] == pytest.approx((math.log(1e-4), math.log(1e-1)))
    point = {"x": 0.1, "lr": 1e-3, "k": 2, "opt": "ranger"}
    assert engine._decode(np.array(engine._encode(point))) == pytest.approx(point)


def test_skopt_dimensions_keep_log_priors():
    dims = SkoptEngine(MIXED)._dimensions()
    assert dims[1].prior == "log-uniform" and dims[2].low == 1 and dims[2].high == 5


def test_gp_engine_asks_the_stationary_kernel_when_the_trend_stalls(monkeypatch):
    """Below ``stall_log_ei``, at a best point on the box's edge, the proposal comes from the
    stationary kernel alone, fitted once per proposal (a batch included); with ``None``,
    without a trend, or when the minimum (and so the best point) is inside the box, it is
    never fitted. A bad value is refused by name."""
    from bayestune import SurrogateConfig
    from bayestune.engines import GPEngine

    space = Space([Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)])
    calls = []
    original = GPEngine._stationary_posteriors

    def spy(self, hist, rng):
        calls.append(self.surrogate.config.trend)
        return original(self, hist, rng)

    monkeypatch.setattr(GPEngine, "_stationary_posteriors", spy)
    # a bowl whose minimum is beyond the x = 1 edge, and one inside the box
    for centre, inside in (((1.4, 0.6), False), ((0.3, 0.6), True)):
        tuner = Tuner(space, lambda p, c=centre: (p["x"] - c[0]) ** 2 + (p["y"] - c[1]) ** 2,
                      seed=1)
        tuner.run(8)
        for options, expected in (({"stall_log_ei": 1e6}, 0 if inside else 1),
                                  ({"stall_log_ei": None}, 0),
                                  ({"stall_log_ei": 1e6, "trend": None}, 0)):
            calls.clear()
            engine = GPEngine(space, "ei", SurrogateConfig(**options))
            points = engine.propose(tuner.history, 3, np.random.default_rng(0))
            assert len(calls) == expected, (centre, options)
            unit = space.to_unit(points)
            assert len(points) == 3 and np.all((unit >= 0) & (unit <= 1))
    with pytest.raises(BayestuneError, match="stall_log_ei=inf"):
        SurrogateConfig(stall_log_ei=math.inf)


@pytest.mark.parametrize("seed", [210, 219])
def test_gp_engine_does_not_stall_on_the_edge_of_branin(seed):
    """Branin, 30 evaluations, seeds 210 and 219 of the core benchmark: the trended GP's
    bowl put its minimum beyond the x1 edge and 17 evaluations went to within 2e-4 of the
    box's width of (10, 3.0) (regret 1.545); with ``stall_log_ei=-9`` the run ends within
    0.05 of the global minimum. The margin is wide: on seeds 200-219 the worst final regret
    with the rule is 0.004."""
    from bayestune import SurrogateConfig, minimize
    from bayestune.testfunctions import PROBLEMS

    problem = PROBLEMS["branin"]()
    values = []

    def f(params):
        values.append(problem(params))
        return values[-1]

    minimize(f, problem.space, 30, seed=seed, surrogate=SurrogateConfig(stall_log_ei=-9.0))
    assert len(values) == 30
    assert min(values) - problem.f_min < 0.05, min(values) - problem.f_min
