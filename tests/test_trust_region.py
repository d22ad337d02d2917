"""Trust region of the acquisition search: its replayed length, its box, and its use."""

from __future__ import annotations

import numpy as np
import pytest

import bayestune as bt
from bayestune.acqopt import AcqOptimizerConfig, UnitBox, maximize_acquisition
from bayestune.acquisition import LowerConfidenceBound
from bayestune.engines import GPEngine
from bayestune.exceptions import BayestuneError
from bayestune.trust_region import TrustRegionConfig, trust_region_box, trust_region_length

CFG = TrustRegionConfig()


def test_design_points_set_the_incumbent_but_do_not_count():
    values = [5.0, 1.0, 7.0, 8.0, 9.0]
    assert trust_region_length(values, [False] * 5, 2, CFG) == CFG.length_init


def test_successes_in_a_row_double_the_side_up_to_the_maximum():
    values = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    counted = [False] + [True] * 9
    # three successes: 0.8 -> 1.6; six more cannot exceed length_max = 1.6
    assert trust_region_length(values, counted, 2, CFG) == pytest.approx(1.6)
    assert trust_region_length(values[:3], counted[:3], 2, CFG) == pytest.approx(0.8)


def test_failures_in_a_row_halve_the_side_and_a_success_resets_the_count():
    # d = 6 -> failure tolerance max(4, 6) = 6
    values = [1.0] + [2.0] * 5 + [0.5] + [2.0] * 6
    counted = [False] + [True] * 12
    assert trust_region_length(values, counted, 6, CFG) == pytest.approx(0.4)
    assert trust_region_length(values[:7], counted[:7], 6, CFG) == pytest.approx(0.8)


def test_an_improvement_below_the_relative_tolerance_is_a_failure():
    values = [1.0] + [1.0 - 1e-4] * 4
    assert trust_region_length(values, [False] + [True] * 4, 2, CFG) == pytest.approx(0.4)


def test_the_region_restarts_once_it_shrinks_below_its_minimum():
    cfg = TrustRegionConfig(length_init=0.5, length_min=0.2, failure_tolerance=1)
    lengths = [trust_region_length([1.0] + [2.0] * k, [False] + [True] * k, 3, cfg)
               for k in range(4)]
    assert lengths == pytest.approx([0.5, 0.25, 0.5, 0.25])


def test_box_is_longer_along_longer_length_scales_and_stays_in_the_cube():
    lo, hi = trust_region_box(np.array([0.5, 0.95]), np.array([0.1, 0.4]), 0.4)
    # weights l / geomean(l) = 0.5 and 2: sides 0.2 and 0.8, the second clipped at 1
    np.testing.assert_allclose(lo, [0.4, 0.55])
    np.testing.assert_allclose(hi, [0.6, 1.0])


@pytest.mark.parametrize("kwargs, match", [
    ({"length_min": 0.9}, "length_min=0.9"),
    ({"length_init": 2.0}, "length_init=2.0"),
    ({"success_tolerance": 0}, "success_tolerance=0"),
    ({"failure_tolerance": 1.5}, "failure_tolerance=1.5"),
    ({"improvement": -0.1}, "improvement=-0.1"),
])
def test_bad_options_are_named(kwargs, match):
    with pytest.raises(BayestuneError, match=match):
        TrustRegionConfig(**kwargs)


def test_the_optimizer_config_takes_only_a_trust_region_config():
    with pytest.raises(BayestuneError, match="trust_region"):
        AcqOptimizerConfig(trust_region={"length_init": 0.5})  # type: ignore[arg-type]


def test_maximizer_stays_inside_the_region(fixed_posterior, rng):
    # -LCB of mu = a.x grows towards x = (1, 1): the maximum over the region is its corner
    post = fixed_posterior(a=[-1.0, -1.0], b=0.0, c=1e-9, X_train=np.array([[0.2, 0.2]]),
                           z_train=np.array([0.0]))
    acq = LowerConfidenceBound(beta=1e-6)
    acq.prepare([post], rng)
    box = UnitBox(dim=2, discrete=np.zeros(2, bool), snap=lambda U: np.clip(U, 0, 1))
    region = (np.array([0.1, 0.2]), np.array([0.3, 0.6]))
    x, _ = maximize_acquisition(acq, box, rng, AcqOptimizerConfig(n_candidates=64),
                                anchors=np.array([[0.2, 0.2]]), region=region)
    np.testing.assert_allclose(x, [0.3, 0.6], atol=1e-9)


def test_engine_proposes_inside_the_replayed_region():
    space = bt.Space([bt.Real("x", 0.0, 1.0), bt.Real("y", 0.0, 1.0), bt.Real("z", 0.0, 1.0)])
    rng = np.random.default_rng(7)
    tuner = bt.Tuner(space, seed=3, n_initial=8,
                     optimizer=AcqOptimizerConfig(trust_region=TrustRegionConfig(
                         length_init=0.2, length_min=0.01)))

    def f(p):
        return (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2 + 0.1 * p["z"]

    for _ in range(8):
        trial = tuner.ask()
        tuner.tell(trial, f(trial.params))
    history = tuner.history
    engine = GPEngine(space, "ei", optimizer=AcqOptimizerConfig(
        trust_region=TrustRegionConfig(length_init=0.2, length_min=0.01)))
    point = engine.propose(history, 1, rng)[0]
    best = min(history.completed, key=lambda t: t.value)
    ls = engine.surrogate.lengthscales
    lo, hi = trust_region_box(space.to_unit(best.params), ls, 0.2)
    u = space.to_unit(point)
    assert np.all(u >= lo - 1e-12) and np.all(u <= hi + 1e-12)
    assert np.any(hi - lo < 1.0)  # the region does restrict the search here
