"""Seeds of simulations from the parameter point: stable under round-off, exact otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from bayestune.seeding import point_key, point_rng, point_seed
from bayestune.testfunctions import GaussianPeakSimulator


def test_last_bit_differences_give_the_same_seed():
    params = {"TimeShower:alphaSvalue": 0.1365, "StringZ:aLund": 0.68, "StringZ:bLund": 0.98}
    for name, value in params.items():
        for nudged in (np.nextafter(value, np.inf), value * (1 + 1e-10), value - 3e-12):
            moved = {**params, name: float(nudged)}
            assert point_seed(7, moved) == point_seed(7, params), (name, nudged)


def test_different_points_and_seeds_give_different_seeds():
    base = {"a": 0.5, "b": 1.25}
    seeds = {point_seed(0, base), point_seed(1, base), point_seed(0, {"a": 0.5001, "b": 1.25}),
             point_seed(0, {"a": 0.5, "b": 1.2501}), point_seed(0, {"a": 1.25, "b": 0.5})}
    assert len(seeds) == 5


def test_the_key_is_canonical_and_platform_independent():
    # sorted names, six significant digits; Python formats floats correctly rounded on
    # every platform, and SHA-256 of that text is the same everywhere
    assert point_key({"b": 2, "a": 0.123456789, "c": "adamw", "d": True}) == (
        '{"a": "1.23457e-01", "b": "2", "c": "\'adamw\'", "d": "True"}')
    assert point_key({"x": -0.0}) == point_key({"x": 0.0})
    assert point_key({"x": np.float32(0.25)}) == point_key({"x": 0.25})
    assert point_key({"x": np.int64(3)}) == point_key({"x": 3})
    assert point_seed(1, {"a": 0.5}) == 15758667839959318281  # pinned: the noise of stores


def test_bad_input_names_the_parameter_and_value():
    with pytest.raises(TypeError, match="'a' = \\[1\\]"):
        point_seed(0, {"a": [1]})
    with pytest.raises(ValueError, match="seed=-1"):
        point_seed(-1, {"a": 1.0})
    with pytest.raises(ValueError, match="digits=0"):
        point_key({"a": 1.0}, digits=0)


def test_the_toy_simulator_draws_the_same_noise_for_a_point_nudged_by_round_off():
    sim = GaussianPeakSimulator(n_events=500, seed=3)
    point = {"mean": 0.3, "width": 1.1}
    nudged = {"mean": float(np.nextafter(0.3, 1.0)), "width": 1.1 * (1 + 1e-12)}
    np.testing.assert_array_equal(sim(point)["shape"].values, sim(nudged)["shape"].values)
    other = {"mean": 0.3001, "width": 1.1}
    assert not np.array_equal(sim(point)["shape"].values, sim(other)["shape"].values)
    a, b = point_rng(5, point).normal(size=3), point_rng(5, point).normal(size=3)
    np.testing.assert_array_equal(a, b)
